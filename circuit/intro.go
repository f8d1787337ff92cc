package circuit

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/defaults"
	"github.com/darkmatter/darkmatter/internal/ratelimit"
)

// An introduction point (spec/circuits.md §9) passes introductions from
// clients to a hidden service without learning where either is. The
// service's circuit sends ESTABLISH_INTRO signed by an intro auth key; a
// client's circuit sends INTRODUCE1 naming that key, and the relay passes
// the body on unchanged as INTRODUCE2 on the service's circuit and answers
// the client with INTRODUCE_ACK. Token buckets per intro circuit and per
// relay bound what clients can make a service receive.

// Sizes of the introduction messages.
const (
	// IntroAuthKeyLen is the size of an intro auth key (Ed25519).
	IntroAuthKeyLen = ed25519.PublicKeySize
	// EstablishIntroLen is the size of an ESTABLISH_INTRO body: auth key
	// (32) ‖ rate (2) ‖ burst (2) ‖ signature (64).
	EstablishIntroLen = IntroAuthKeyLen + 2 + 2 + ed25519.SignatureSize
	// MaxIntroduceEncrypted is the most an INTRODUCE1's encrypted part
	// holds.
	MaxIntroduceEncrypted = cell.MaxData - IntroAuthKeyLen
)

// INTRODUCE_ACK statuses.
const (
	IntroStatusPassed    byte = 0 // passed on to the service as INTRODUCE2
	IntroStatusUnknown   byte = 1 // no intro circuit for the auth key
	IntroStatusLimited   byte = 2 // rate limited or the service's queue full: dropped
	IntroStatusMalformed byte = 3 // no encrypted part
)

// introContext starts the bytes an ESTABLISH_INTRO signature covers.
const introContext = "darkmatter establish intro v1\x00"

// IntroSignedBytes returns what the auth key signs in an ESTABLISH_INTRO
// to intro point intro of network: "darkmatter establish intro v1\x00" ‖
// len(network) (1) ‖ network ‖ intro (32) ‖ auth key (32) ‖ rate (2) ‖
// burst (2). A network name is at most 255 bytes.
func IntroSignedBytes(network string, intro keys.NodeID, authKey [32]byte, rate, burst uint16) []byte {
	b := keys.AppendSigned(make([]byte, 0, len(introContext)+1+len(network)+len(intro)+len(authKey)+4), introContext, network, intro[:])
	b = append(b, authKey[:]...)
	b = binary.BigEndian.AppendUint16(b, rate)
	return binary.BigEndian.AppendUint16(b, burst)
}

// establishIntro is a decoded ESTABLISH_INTRO body.
type establishIntro struct {
	authKey     [IntroAuthKeyLen]byte
	rate, burst uint16
	sig         [ed25519.SignatureSize]byte
}

var (
	errEstablishIntro = errors.New("circuit: malformed ESTABLISH_INTRO")
	errIntroSignature = errors.New("circuit: bad ESTABLISH_INTRO signature")
	// errIntroFull means the relay holds MaxIntroCircuits intro circuits:
	// the ESTABLISH_INTRO's circuit is destroyed with reason 5.
	errIntroFull = errors.New("circuit: too many intro circuits")
)

// parseEstablishIntro decodes an ESTABLISH_INTRO body and checks its
// signature for intro point intro of network.
func parseEstablishIntro(b []byte, network string, intro keys.NodeID) (establishIntro, error) {
	var e establishIntro
	if len(b) != EstablishIntroLen {
		return e, errEstablishIntro
	}
	copy(e.authKey[:], b)
	e.rate = binary.BigEndian.Uint16(b[32:])
	e.burst = binary.BigEndian.Uint16(b[34:])
	copy(e.sig[:], b[36:])
	if !ed25519.Verify(e.authKey[:], IntroSignedBytes(network, intro, e.authKey, e.rate, e.burst), e.sig[:]) {
		return e, errIntroSignature
	}
	return e, nil
}

// marshalEstablishIntro signs and encodes an ESTABLISH_INTRO body.
func marshalEstablishIntro(auth ed25519.PrivateKey, network string, intro keys.NodeID, rate, burst uint16) []byte {
	var pub [IntroAuthKeyLen]byte
	copy(pub[:], auth.Public().(ed25519.PublicKey))
	b := make([]byte, 0, EstablishIntroLen)
	b = append(b, pub[:]...)
	b = binary.BigEndian.AppendUint16(b, rate)
	b = binary.BigEndian.AppendUint16(b, burst)
	return append(b, ed25519.Sign(auth, IntroSignedBytes(network, intro, pub, rate, burst))...)
}

// parseIntroduce1 splits an INTRODUCE1 body into the auth key and the
// encrypted part (aliasing b); ok is false when it has no encrypted part.
func parseIntroduce1(b []byte) (authKey [IntroAuthKeyLen]byte, encrypted []byte, ok bool) {
	if len(b) <= IntroAuthKeyLen || len(b) > cell.MaxData {
		return authKey, nil, false
	}
	copy(authKey[:], b)
	return authKey, b[IntroAuthKeyLen:], true
}

// IntroConfig makes a relay an introduction point (Config.Intro). Zero
// fields take the defaults.
type IntroConfig struct {
	// MaxIntroCircuits bounds the intro circuits (auth keys) the relay
	// holds (default 4096); an ESTABLISH_INTRO beyond it destroys its
	// circuit with reason 5.
	MaxIntroCircuits int
	// Rate and Burst are an intro circuit's INTRODUCE2 token bucket when
	// its ESTABLISH_INTRO asks for 0 (defaults 25/s, 200). MaxRate and
	// MaxBurst cap what an ESTABLISH_INTRO may ask for (defaults 200/s,
	// 2000).
	Rate     float64
	Burst    int
	MaxRate  float64
	MaxBurst int
	// TotalRate and TotalBurst bound the INTRODUCE2 the relay passes on
	// over all intro circuits (defaults 500/s, 1000).
	TotalRate  float64
	TotalBurst int
	// MaxQueued is how many cells may wait on the service's link for an
	// intro circuit before INTRODUCE1s for it are dropped (status 2), for
	// channels that report it (CircuitQueueLen); default 256, a quarter of
	// a link's default per-circuit queue, so a burst of introductions
	// never overflows the queue and costs the service its circuit.
	MaxQueued int
	// Now is the clock of the token buckets; nil means time.Now.
	Now func() time.Time
}

// Defaults of IntroConfig.
const (
	DefaultMaxIntroCircuits = 4096
	DefaultIntroRate        = 25
	DefaultIntroBurst       = 200
	DefaultIntroMaxRate     = 200
	DefaultIntroMaxBurst    = 2000
	DefaultIntroTotalRate   = 500
	DefaultIntroTotalBurst  = 1000
	DefaultIntroMaxQueued   = 256
)

func (c *IntroConfig) setDefaults() {
	defaults.Set(&c.MaxIntroCircuits, DefaultMaxIntroCircuits)
	defaults.Set(&c.Rate, DefaultIntroRate)
	defaults.Set(&c.Burst, DefaultIntroBurst)
	defaults.Set(&c.MaxRate, DefaultIntroMaxRate)
	defaults.Set(&c.MaxBurst, DefaultIntroMaxBurst)
	defaults.Set(&c.TotalRate, DefaultIntroTotalRate)
	defaults.Set(&c.TotalBurst, DefaultIntroTotalBurst)
	defaults.Set(&c.MaxQueued, DefaultIntroMaxQueued)
	if c.Now == nil {
		c.Now = time.Now
	}
}

// introCirc is a service's intro circuit at this relay.
type introCirc struct {
	rc      *relayCirc
	authKey [IntroAuthKeyLen]byte
	rate    float64
	burst   int
	bucket  ratelimit.Bucket // guarded by introTable.mu
}

// introTable holds a relay's intro circuits by auth key.
type introTable struct {
	cfg *IntroConfig // nil: not an intro point
	// self is this relay's NodeID, which ESTABLISH_INTRO signatures name.
	self keys.NodeID

	mu    sync.Mutex
	byKey map[[IntroAuthKeyLen]byte]*introCirc
	total ratelimit.Bucket
}

// circuitQueuer is implemented by channels that report the cells queued
// for one circuit (*link.Link): the intro point drops an introduction
// rather than overflow the service's queue.
type circuitQueuer interface {
	CircuitQueueLen(circ uint32) int
}

// freeEnd reports whether rc is a circuit end that has not been put to
// any use yet: no next hop, no streams, not in a joint, no introduction.
// The caller holds rc.mu.
func (rc *relayCirc) freeEnd() bool {
	return rc.next == nil && !rc.extending && rc.edge == nil && rc.joint == nil &&
		rc.intro == nil && !rc.introduced && !rc.dead
}

// handleIntro handles ESTABLISH_INTRO and INTRODUCE1 from rc's client,
// and refuses the intro point's own commands. An error destroys rc: with
// reason 5 for errIntroFull, else 1.
func (s *Switch) handleIntro(rc *relayCirc, m cell.RelayMsg) error {
	t := &s.intros
	if t.cfg == nil || m.Stream != 0 {
		return errProtocol
	}
	switch m.Cmd {
	case cell.RelayEstablishIntro:
		return t.establish(rc, m.Data, s.cfg.Network)
	case cell.RelayIntroduce1:
		return t.introduce(s, rc, m.Data)
	}
	return errProtocol // INTRO_ESTABLISHED, INTRODUCE2 or INTRODUCE_ACK from a client
}

// establish makes rc the intro circuit of the ESTABLISH_INTRO's auth key,
// replacing an earlier one for that key.
func (t *introTable) establish(rc *relayCirc, data []byte, network string) error {
	e, err := parseEstablishIntro(data, network, t.self)
	if err != nil {
		return errProtocol
	}
	ic := &introCirc{rc: rc, authKey: e.authKey, rate: t.cfg.Rate, burst: t.cfg.Burst}
	if e.rate != 0 {
		ic.rate = min(float64(e.rate), t.cfg.MaxRate)
	}
	if e.burst != 0 {
		ic.burst = min(int(e.burst), t.cfg.MaxBurst)
	}
	t.mu.Lock()
	if _, replaces := t.byKey[e.authKey]; !replaces && len(t.byKey) >= t.cfg.MaxIntroCircuits {
		t.mu.Unlock()
		return errIntroFull
	}
	rc.mu.Lock()
	free := rc.freeEnd()
	if free {
		rc.intro = ic
	}
	rc.mu.Unlock()
	if !free {
		t.mu.Unlock()
		return errProtocol
	}
	// An older circuit for the key is forgotten, not destroyed: it can
	// carry nothing else and dies with its client.
	t.byKey[e.authKey] = ic
	// Still under t.mu, so no INTRODUCE2 (looked up under t.mu) can
	// overtake INTRO_ESTABLISHED. Send never waits for the network. On
	// error the caller destroys rc (not here: that takes t.mu).
	err = rc.emit(cell.RelayIntroEstablished, 0, nil)
	t.mu.Unlock()
	return err
}

// introduce passes an INTRODUCE1 from rc's client on to the intro circuit
// of its auth key and answers INTRODUCE_ACK. It never waits for the
// service: a full queue drops the introduction.
func (t *introTable) introduce(s *Switch, rc *relayCirc, data []byte) error {
	rc.mu.Lock()
	free := rc.freeEnd()
	if free {
		rc.introduced = true
	}
	rc.mu.Unlock()
	if !free {
		return errProtocol // a second INTRODUCE1, or a circuit in use
	}
	// A lost ACK destroyed rc already (originate).
	rc.originate(cell.RelayIntroduceAck, 0, []byte{t.pass(s, data)})
	return nil
}

// pass forwards an INTRODUCE1 body as INTRODUCE2 and returns the status
// for the client.
func (t *introTable) pass(s *Switch, data []byte) byte {
	key, _, ok := parseIntroduce1(data)
	if !ok {
		return IntroStatusMalformed
	}
	now := t.cfg.Now()
	t.mu.Lock()
	ic := t.byKey[key]
	switch {
	case ic == nil:
		t.mu.Unlock()
		s.counters.introUnknown.Add(1)
		return IntroStatusUnknown
	case !ic.bucket.Take(now, ic.rate, ic.burst) || !t.total.Take(now, t.cfg.TotalRate, t.cfg.TotalBurst):
		t.mu.Unlock()
		s.counters.introLimited.Add(1)
		return IntroStatusLimited
	}
	t.mu.Unlock()
	svc := ic.rc
	if q, ok := svc.prev.(circuitQueuer); ok && q.CircuitQueueLen(svc.prevID) >= t.cfg.MaxQueued {
		s.counters.introLimited.Add(1)
		return IntroStatusLimited
	}
	switch err := svc.originate(cell.RelayIntroduce2, 0, data); {
	case err == ErrDestroyed:
		// The intro circuit died meanwhile; its key is being forgotten.
		s.counters.introUnknown.Add(1)
		return IntroStatusUnknown
	case err != nil:
		// The service's link refused the cell: originate destroyed the
		// intro circuit, whose counters moved on without it.
		s.counters.introLimited.Add(1)
		return IntroStatusLimited
	}
	s.counters.introduced.Add(1)
	return IntroStatusPassed
}

// circuitDead forgets ic's auth key if ic is still its intro circuit.
func (t *introTable) circuitDead(ic *introCirc) {
	t.mu.Lock()
	if t.byKey[ic.authKey] == ic {
		delete(t.byKey, ic.authKey)
	}
	t.mu.Unlock()
}

// circuits returns how many auth keys have an intro circuit.
func (t *introTable) circuits() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byKey)
}
