package circuit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/circuit/protover"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/defaults"
	"github.com/darkmatter/darkmatter/internal/ratelimit"
	"github.com/darkmatter/darkmatter/internal/safelog"
)

// Channel is what circuits need from a link: an ordered, authenticated cell
// pipe to one neighbour. *link.Link implements it.
type Channel interface {
	// Send queues c for sending and takes ownership of it.
	Send(c *cell.Cell) error
	// Initiator reports whether this side opened the link; it decides which
	// half of the circuit ID space this side allocates from.
	Initiator() bool
	Done() <-chan struct{}
}

// Hop identifies a relay and the keys a client needs to extend to it.
type Hop struct {
	Identity keys.IdentityPublicKey
	Link     keys.LinkPublicKey
	Addr     string // "host:port" link address
	Onion    keys.OnionPublicKey
	KEM      *keys.KEMPublicKey
	// Protocols are the relay's subprotocol versions from its signed
	// descriptor: the client sends a hop only what they list.
	Protocols protover.Set
}

// Linker opens (or reuses) a channel to a relay.
type Linker interface {
	Channel(ctx context.Context, identity keys.IdentityPublicKey, link keys.LinkPublicKey, addr string) (Channel, error)
}

// Config configures a Switch. The zero value is a client-only switch that
// refuses CREATE. Every limit below bounds what peers can make a relay
// hold; zero means the default, which a 2-core relay sustains
// (spec/circuits.md §5.4 lists them).
type Config struct {
	// Network is the network name mixed into every circuit handshake.
	Network string
	// OnionKeys gives a relay its circuit handshake key pairs each time it
	// answers a CREATE (OnionKeys, a *keys.OnionKeyring that rotates).
	// Onion and KEM are the same as a single pair that never rotates, for
	// callers that set no OnionKeys. With neither, this node is not a relay
	// and answers CREATE with DESTROY.
	OnionKeys OnionKeys
	Onion     *keys.OnionPrivateKey
	KEM       *keys.KEMPrivateKey
	// Identity is this relay's identity key: an EXTEND to it (a circuit
	// through this relay twice in a row) is refused without dialling. The
	// zero value skips the check.
	Identity keys.IdentityPublicKey
	// Linker opens channels for the first hop of this node's own
	// circuits, a relay this node chose. Required.
	Linker Linker
	// Extender opens channels for a peer's EXTEND, a relay the peer chose:
	// it applies the node's extend rules (only relays it knows, at an
	// address of their signed descriptor) before it dials, and returns an
	// error wrapping ErrExtendRefused when they refuse. Required for a
	// relay (OnionKeys or Onion set).
	Extender Linker
	// Exit, if non-nil, makes this relay an exit: it serves KindTCP
	// streams (BEGIN).
	Exit *ExitConfig
	// Handlers serve the other kinds of streams that arrive at this relay
	// when it is a circuit's last hop (KindDir, and later hidden-service and
	// compute kinds). A kind without a handler is answered END UNSUPPORTED.
	Handlers map[StreamKind]StreamHandler
	// MaxStreams bounds the open streams of one circuit end (default 512),
	// at a relay and at a client end that serves streams alike; a BEGIN
	// beyond it is answered END RESOURCE_LIMIT.
	MaxStreams int
	// MaxJoints bounds the circuits waiting at this relay for a joint
	// (default 4096); more JOIN_ESTABLISHes destroy their circuits.
	MaxJoints int
	// Intro, if non-nil, makes this relay an introduction point for
	// hidden services (Intro=1, spec/circuits.md §9); it needs Identity,
	// whose NodeID ESTABLISH_INTRO signatures name.
	Intro *IntroConfig
	// Handshakes is how many circuit handshakes run at once: the number of
	// handshake workers (default 2×GOMAXPROCS).
	Handshakes int
	// ExtendTimeout bounds an EXTEND (default 10s) and a client build step.
	ExtendTimeout time.Duration

	// MaxCircuitsPerChannel bounds the circuits on one channel, counted
	// separately for each half of the ID space: those the peer opened
	// (CREATE) and those this node opened (its own and its EXTENDs)
	// (default 4096). A CREATE beyond it is refused with DESTROY reason 5;
	// an EXTEND beyond it fails with reason 5.
	MaxCircuitsPerChannel int
	// MaxCircuitsPerSource bounds the circuits peers opened from one
	// source (an IPv4 address or IPv6 /64, for channels that say, see
	// Sourcer), over all its channels (default MaxCircuits/8, so at least
	// eight sources are needed to fill a relay).
	MaxCircuitsPerSource int
	// MaxCircuits bounds the circuits peers opened at this relay over all
	// channels (default 65536); a CREATE beyond it is refused (reason 5).
	MaxCircuits int
	// CreateRate and CreateBurst are a token bucket per channel for CREATE
	// cells: CreateRate per second on average, bursts of CreateBurst
	// (defaults 200/s and 256). A CREATE beyond it is refused with DESTROY
	// reason 5 before any handshake work.
	CreateRate  float64
	CreateBurst int
	// MaxPendingCreates bounds the CREATEs waiting for a handshake worker
	// over all channels (default 4096), MaxPendingCreatesPerChannel those
	// of one channel (default 256); more are refused (reason 5). Workers
	// take one CREATE from each channel with CREATEs waiting in turn (round
	// robin), so a flood on one channel delays another channel's CREATE by
	// about one handshake per busy channel, not by the flood's length. A
	// channel with no CREATE waiting is admitted even when the node-wide
	// queue is full, so floods on other channels cannot lock it out.
	MaxPendingCreates           int
	MaxPendingCreatesPerChannel int
	// ReplayCacheSize is how many client handshake keys (the ephemeral
	// key opening message 1) the relay remembers to refuse a replayed
	// CREATE handshake with DESTROY reason 6 (default 131072, about 5 MiB
	// at most). ReplayWindow is how long a key is remembered at least,
	// unless more than ReplayCacheSize/2 newer handshakes pushed it out
	// (default 1h); keys are forgotten after 2×ReplayWindow.
	ReplayCacheSize int
	ReplayWindow    time.Duration
	// CircuitIdleTimeout destroys a circuit at this relay (reason 5) on
	// which no cell passed in either direction for that long (default 1h;
	// negative disables). A circuit that carries anything at least that
	// often, application keepalives included, never expires.
	CircuitIdleTimeout time.Duration
	// DestroyReplyRate and DestroyReplyBurst are a token bucket per channel
	// for the DESTROYs that answer cells for unknown circuits (defaults
	// 10/s and 20); each circuit ID is answered at most once while it is
	// among the channel's recently answered or destroyed IDs. Cells beyond
	// that are dropped and counted.
	DestroyReplyRate  float64
	DestroyReplyBurst int

	// Random is the randomness for handshakes; nil means crypto/rand.
	Random io.Reader
	Logf   safelog.Logf
}

// Defaults of the limits in Config.
const (
	DefaultMaxCircuitsPerChannel       = 4096
	DefaultMaxCircuits                 = 65536
	DefaultCreateRate                  = 200
	DefaultCreateBurst                 = 256
	DefaultMaxPendingCreates           = 4096
	DefaultMaxPendingCreatesPerChannel = 256
	DefaultReplayCacheSize             = 1 << 17
	DefaultReplayWindow                = time.Hour
	DefaultCircuitIdleTimeout          = time.Hour
	DefaultDestroyReplyRate            = 10
	DefaultDestroyReplyBurst           = 20
)

func (cfg *Config) setDefaults() {
	defaults.Set(&cfg.Handshakes, 2*runtime.GOMAXPROCS(0))
	defaults.Set(&cfg.ExtendTimeout, 10*time.Second)
	defaults.Set(&cfg.MaxStreams, 512)
	defaults.Set(&cfg.MaxJoints, 4096)
	defaults.Set(&cfg.MaxCircuitsPerChannel, DefaultMaxCircuitsPerChannel)
	defaults.Set(&cfg.MaxCircuits, DefaultMaxCircuits)
	defaults.Set(&cfg.MaxCircuitsPerSource, cfg.MaxCircuits/8)
	defaults.Set(&cfg.CreateRate, DefaultCreateRate)
	defaults.Set(&cfg.CreateBurst, DefaultCreateBurst)
	defaults.Set(&cfg.MaxPendingCreates, DefaultMaxPendingCreates)
	defaults.Set(&cfg.MaxPendingCreatesPerChannel, DefaultMaxPendingCreatesPerChannel)
	defaults.Set(&cfg.ReplayCacheSize, DefaultReplayCacheSize)
	defaults.Set(&cfg.ReplayWindow, DefaultReplayWindow)
	if cfg.CircuitIdleTimeout == 0 {
		cfg.CircuitIdleTimeout = DefaultCircuitIdleTimeout
	}
	defaults.Set(&cfg.DestroyReplyRate, DefaultDestroyReplyRate)
	defaults.Set(&cfg.DestroyReplyBurst, DefaultDestroyReplyBurst)
}

var (
	// ErrDestroyed means the circuit was destroyed.
	ErrDestroyed = errors.New("circuit: destroyed")
	// ErrClosed means the switch was closed.
	ErrClosed = errors.New("circuit: switch closed")
	// ErrExtendRefused is what Config.Extender returns, wrapped, when the
	// node's extend rules refuse the relay or address of an EXTEND before
	// any dial: the hop then destroys the circuit with DESTROY reason 9
	// (EXTEND_REFUSED) instead of 4 (EXTEND_FAILED).
	ErrExtendRefused = errors.New("circuit: extend refused")
	errProtocol      = errors.New("circuit: protocol violation")
	// errTooManyCircuits means a channel has MaxCircuitsPerChannel
	// circuits in this node's half of the ID space.
	errTooManyCircuits = errors.New("circuit: too many circuits on channel")
)

// DestroyedError carries the DESTROY reason.
type DestroyedError struct{ Reason byte }

func (e *DestroyedError) Error() string {
	return fmt.Sprintf("circuit: destroyed (%s)", destroyReasonString(e.Reason))
}
func (e *DestroyedError) Unwrap() error { return ErrDestroyed }

func destroyReasonString(r byte) string {
	switch r {
	case cell.DestroyNone:
		return "closed"
	case cell.DestroyProtocol:
		return "protocol error"
	case cell.DestroyAuth:
		return "cell authentication failed"
	case cell.DestroyLinkClosed:
		return "link closed"
	case cell.DestroyExtendFailed:
		return "extend failed"
	case cell.DestroyResource:
		return "resource limit"
	case cell.DestroyHandshake:
		return "handshake failed"
	case cell.DestroyShutdown:
		return "relay shutting down"
	case cell.DestroyDestroyed:
		return "destroyed beyond the first hop"
	case cell.DestroyExtendRefused:
		return "extend refused"
	}
	return fmt.Sprintf("reason %d", r)
}

// endpoint is one end of a circuit on one channel.
type endpoint interface {
	// handle processes a cell arriving on this end; it owns c.
	handle(c *cell.Cell)
	// channelClosed tears the circuit down because the channel died.
	channelClosed()
	// kill destroys the circuit with reason towards every side still up.
	kill(reason byte)
}

// chanTable is a switch's state for one channel.
type chanTable struct {
	circs  map[uint32]endpoint
	nextID uint32
	// own and peer count the circuits in this node's and in the peer's
	// half of the ID space.
	own, peer int
	// source is where the peer connects from (Sourcer), "" if unknown.
	source string
	// creates limits the peer's CREATEs, destroys the DESTROYs answering
	// cells for unknown circuits.
	creates, destroys ratelimit.Bucket
	// answered holds IDs recently destroyed or answered with DESTROY: a
	// cell for one of them draws no (further) DESTROY.
	answered idRing
	// hsQueue holds the CREATEs waiting for a handshake worker, oldest
	// first; ready says the table is in Switch.hsReady.
	hsQueue []*relayCirc
	ready   bool
}

// ownHalf reports whether id is in the half of ch's ID space this node
// allocates from (spec/cells.md §1.1).
func ownHalf(ch Channel, id uint32) bool { return (id>>31 == 1) == ch.Initiator() }

// Switch routes cells between channels and circuits.
type Switch struct {
	cfg Config
	// replay remembers the handshakes answered, with whichever onion pair
	// (create.go).
	replay *replayFilter
	// forwardHook, set only by tests, sees forwarded cells (a malicious relay).
	forwardHook func(*cell.Cell)
	// jointHook, set only by tests, sees (and may change) every E2E
	// message crossing a joint: what a rendezvous relay can observe.
	jointHook func([]byte)
	handlers  map[StreamKind]StreamHandler
	counters  counters
	// tasks counts the goroutines goFunc runs.
	tasks  atomic.Int64
	joints jointTable
	intros introTable
	logf   safelog.Logf
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// mu guards the following, and the chanTables in chans.
	mu     sync.Mutex
	chans  map[Channel]*chanTable
	closed bool
	// relayCircs counts the circuits peers opened, over all channels;
	// sourceCircs the same per source (chanTable.source).
	relayCircs  int
	sourceCircs map[string]int
	// hsReady lists the channels with CREATEs waiting, in the order the
	// handshake workers serve them; hsPending counts those CREATEs.
	// hsCond (on mu) wakes a worker.
	hsReady   []*chanTable
	hsPending int
	hsCond    sync.Cond
}

// counters are a switch's statistics (Stats).
type counters struct {
	unknownRelay, createRateLimited, createRefused, replays, handshakeFailed,
	unknownDropped, destroyReplies, idleExpired, dropped, extendRefused,
	introduced, introLimited, introUnknown atomic.Uint64
}

// Config returns the switch's configuration with the defaults filled in.
func (s *Switch) Config() Config { return s.cfg }

// NewSwitch returns a Switch.
func NewSwitch(cfg Config) (*Switch, error) {
	if cfg.Linker == nil {
		return nil, errors.New("circuit: Config.Linker is required")
	}
	if (cfg.Onion == nil) != (cfg.KEM == nil) {
		return nil, errors.New("circuit: Onion and KEM keys go together")
	}
	if cfg.OnionKeys == nil && cfg.Onion != nil {
		cfg.OnionKeys = keys.NewOnionKeyring(keys.OnionPair{Onion: cfg.Onion, KEM: cfg.KEM})
	}
	if cfg.OnionKeys != nil && cfg.Extender == nil {
		return nil, errors.New("circuit: Config.Extender is required for a relay")
	}
	cfg.setDefaults()
	var introCfg *IntroConfig
	if cfg.Intro != nil {
		if cfg.Identity == (keys.IdentityPublicKey{}) {
			return nil, errors.New("circuit: an introduction point needs Config.Identity")
		}
		if len(cfg.Network) > 255 {
			return nil, errors.New("circuit: network name longer than 255 bytes")
		}
		ic := *cfg.Intro
		ic.setDefaults()
		cfg.Intro, introCfg = &ic, &ic
	}
	handlers := make(map[StreamKind]StreamHandler, len(cfg.Handlers)+1)
	for k, h := range cfg.Handlers {
		handlers[k] = h
	}
	if cfg.Exit != nil {
		if err := cfg.Exit.setDefaults(); err != nil {
			return nil, err
		}
		handlers[KindTCP] = exitHandler{cfg.Exit}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Switch{
		handlers: handlers,
		joints:   jointTable{waiting: make(map[[cell.CookieLen]byte]*relayCirc)},
		intros:   introTable{cfg: introCfg, self: cfg.Identity.NodeID(), byKey: make(map[[IntroAuthKeyLen]byte]*introCirc)},
		cfg:      cfg,
		logf:     cfg.Logf,
		ctx:      ctx,
		cancel:   cancel,
		chans:    make(map[Channel]*chanTable),
	}
	s.hsCond.L = &s.mu
	if cfg.OnionKeys != nil {
		s.replay = newReplayFilter(cfg.ReplayCacheSize, cfg.ReplayWindow)
		for range cfg.Handshakes {
			s.wg.Add(1)
			go s.handshakeWorker()
		}
		if cfg.CircuitIdleTimeout > 0 {
			s.wg.Add(1)
			go s.idleLoop()
		}
	}
	return s, nil
}

// Close destroys every circuit and waits for the switch's goroutines.
func (s *Switch) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var eps []endpoint
	for _, t := range s.chans {
		s.dropQueue(t)
		for _, ep := range t.circs {
			eps = append(eps, ep)
		}
	}
	s.hsCond.Broadcast()
	s.mu.Unlock()
	s.cancel()
	for _, ep := range eps {
		ep.channelClosed()
	}
	s.wg.Wait()
	return nil
}

// go runs f as a goroutine tracked by Close.
func (s *Switch) goFunc(f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	s.tasks.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.tasks.Add(-1)
		f()
	}()
	return true
}

// register allocates a circuit ID on ch for ep, from this node's half.
func (s *Switch) register(ch Channel, ep endpoint) (uint32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	t := s.table(ch)
	if t == nil {
		// ChannelClosed has run or is about to; a new entry would leak.
		return 0, ErrDestroyed
	}
	if t.own >= s.cfg.MaxCircuitsPerChannel {
		return 0, errTooManyCircuits
	}
	var hi uint32
	if ch.Initiator() {
		hi = 1 << 31
	}
	for {
		t.nextID = (t.nextID + 1) &^ (1 << 31)
		id := t.nextID | hi
		if t.nextID == 0 {
			continue
		}
		if _, used := t.circs[id]; !used {
			t.circs[id] = ep
			t.own++
			return id, nil
		}
	}
}

// table returns ch's table, creating it; nil if the switch is closed or ch
// is done (ChannelClosed has run or is about to, so a new table would
// leak). The caller holds s.mu.
// Sourcer is implemented by channels that know where their peer connects
// from: a short key for its IPv4 address or IPv6 /64 (the link manager's
// per-address key). The switch bounds the circuits of one source.
type Sourcer interface {
	Source() string
}

// sourceDone forgets n circuits of source. s.mu must be held.
func (s *Switch) sourceDone(source string, n int) {
	if source == "" || n == 0 {
		return
	}
	if s.sourceCircs[source] -= n; s.sourceCircs[source] <= 0 {
		delete(s.sourceCircs, source)
	}
}

func (s *Switch) table(ch Channel) *chanTable {
	t := s.chans[ch]
	if t == nil {
		if s.closed || isDone(ch.Done()) {
			return nil
		}
		t = &chanTable{circs: make(map[uint32]endpoint)}
		if sc, ok := ch.(Sourcer); ok {
			t.source = sc.Source()
		}
		s.chans[ch] = t
	}
	return t
}

// unregister forgets circuit id on ch, and remembers the ID as recently
// destroyed: cells the peer sent before it learnt draw no DESTROY.
func (s *Switch) unregister(ch Channel, id uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.chans[ch]
	if t == nil {
		return
	}
	if _, ok := t.circs[id]; !ok {
		return
	}
	delete(t.circs, id)
	if ownHalf(ch, id) {
		t.own--
	} else {
		t.peer--
		s.relayCircs--
		s.sourceDone(t.source, 1)
	}
	t.answered.add(id)
}

func (s *Switch) lookup(ch Channel, id uint32) endpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.chans[ch]; t != nil {
		return t.circs[id]
	}
	return nil
}

// Stats are a switch's counters.
type Stats struct {
	// UnknownRelay counts relay messages with a command this node does not
	// know, dropped (spec/cells.md §4).
	UnknownRelay uint64
	// CreateRateLimited counts CREATEs refused by a channel's CREATE token
	// bucket; CreateRefused those refused by the circuit and queue limits;
	// Replays the replayed CREATE handshakes refused; HandshakeFailed the
	// CREATEs whose handshake failed otherwise.
	CreateRateLimited, CreateRefused, Replays, HandshakeFailed uint64
	// UnknownCircuitDropped counts cells for unknown circuits dropped
	// without an answer (already answered or over the rate);
	// DestroyReplies those answered with DESTROY.
	UnknownCircuitDropped, DestroyReplies uint64
	// IdleExpired counts circuits destroyed for being idle; Dropped those
	// destroyed by DropCircuit; ExtendRefused the EXTENDs refused by the
	// extend rules.
	IdleExpired, Dropped, ExtendRefused uint64
	// PendingCreates is how many CREATEs wait for a handshake worker;
	// Tasks how many goroutines serve streams (the exit's connections
	// among them) or EXTENDs.
	PendingCreates, Tasks int
	// JointsWaiting is how many circuits wait for a joint; Joints how many
	// joints are up; JointBuffered how many E2E messages joints hold for a
	// side whose window is closed.
	JointsWaiting, Joints, JointBuffered int
	// IntroCircuits is how many auth keys have an intro circuit at this
	// relay; Introduced counts the INTRODUCE1s passed on as INTRODUCE2,
	// IntroRateLimited those dropped by a token bucket or a full queue
	// (status 2), IntroUnknown those for an auth key without an intro
	// circuit (status 1).
	IntroCircuits                              int
	Introduced, IntroRateLimited, IntroUnknown uint64
}

// Stats returns the switch's counters.
func (s *Switch) Stats() Stats {
	c := &s.counters
	st := Stats{
		UnknownRelay:          c.unknownRelay.Load(),
		CreateRateLimited:     c.createRateLimited.Load(),
		CreateRefused:         c.createRefused.Load(),
		Replays:               c.replays.Load(),
		HandshakeFailed:       c.handshakeFailed.Load(),
		UnknownCircuitDropped: c.unknownDropped.Load(),
		DestroyReplies:        c.destroyReplies.Load(),
		IdleExpired:           c.idleExpired.Load(),
		Dropped:               c.dropped.Load(),
		ExtendRefused:         c.extendRefused.Load(),
		Introduced:            c.introduced.Load(),
		IntroRateLimited:      c.introLimited.Load(),
		IntroUnknown:          c.introUnknown.Load(),
	}
	s.mu.Lock()
	st.PendingCreates = s.hsPending
	s.mu.Unlock()
	st.Tasks = int(s.tasks.Load())
	st.JointsWaiting, st.Joints, st.JointBuffered = s.joints.stats()
	st.IntroCircuits = s.intros.circuits()
	return st
}

// ChannelCircuits returns how many circuits use ch (a link manager closes a
// replaced link once none do).
func (s *Switch) ChannelCircuits(ch Channel) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.chans[ch]; t != nil {
		return len(t.circs)
	}
	return 0
}

// Circuits returns how many circuit ends are registered (for status and
// tests).
func (s *Switch) Circuits() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, t := range s.chans {
		n += len(t.circs)
	}
	return n
}

// DropCircuit destroys circuit id on ch with DESTROY reason 5 (RESOURCE)
// towards every side, and counts it: the link layer calls it when its
// memory budget discarded the circuit's queued cells, so the circuit
// cannot continue. It sends the DESTROYs through Channel.Send, so the
// caller must not hold a lock that Send takes. An unknown circuit is
// ignored.
func (s *Switch) DropCircuit(ch Channel, id uint32) {
	ep := s.lookup(ch, id)
	if ep == nil {
		return
	}
	s.counters.dropped.Add(1)
	ep.kill(cell.DestroyResource)
}

// HandleCell processes a cell that arrived on ch. It takes ownership of c.
// The caller calls it from ch's single reader goroutine.
func (s *Switch) HandleCell(ch Channel, c *cell.Cell) {
	id := c.Circ()
	if id == 0 {
		c.Free() // link-level cells are the caller's business
		return
	}
	if ep := s.lookup(ch, id); ep != nil {
		ep.handle(c)
		return
	}
	switch c.Cmd() {
	case cell.CmdCreate:
		s.handleCreate(ch, c)
	case cell.CmdDestroy:
		c.Free()
	default:
		c.Free()
		s.unknownCircuit(ch, id)
	}
}

// unknownCircuit answers a cell for a circuit ch does not carry with
// DESTROY, so the peer frees its side: at most once per ID while the ID is
// among the recently answered or destroyed ones, and within the channel's
// DESTROY reply rate. Other such cells are dropped and counted.
func (s *Switch) unknownCircuit(ch Channel, id uint32) {
	answer := false
	s.mu.Lock()
	if t := s.table(ch); t != nil && !t.answered.has(id) &&
		t.destroys.Take(time.Now(), s.cfg.DestroyReplyRate, s.cfg.DestroyReplyBurst) {
		t.answered.add(id)
		answer = true
	}
	s.mu.Unlock()
	if !answer {
		s.counters.unknownDropped.Add(1)
		return
	}
	s.counters.destroyReplies.Add(1)
	sendDestroy(ch, id, cell.DestroyProtocol)
}

// ChannelClosed destroys every circuit that used ch.
func (s *Switch) ChannelClosed(ch Channel) {
	s.mu.Lock()
	t := s.chans[ch]
	delete(s.chans, ch)
	if t != nil {
		s.relayCircs -= t.peer
		s.sourceDone(t.source, t.peer)
		s.dropQueue(t)
	}
	s.mu.Unlock()
	if t == nil {
		return
	}
	for _, ep := range t.circs {
		ep.channelClosed()
	}
}

func sendDestroy(ch Channel, id uint32, reason byte) {
	if ch == nil {
		return
	}
	d := cell.New(id, cell.CmdDestroy)
	d.Body()[0] = reason
	ch.Send(d)
}
