package onion

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/crypto/hs"
	"github.com/darkmatter/darkmatter/crypto/hsblind"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/defaults"
	"github.com/darkmatter/darkmatter/internal/streamerr"
	"github.com/darkmatter/darkmatter/overlay/dht"
)

// ServiceConfig configures a Service. Zero fields take the defaults in
// brackets.
type ServiceConfig struct {
	// Key is the service's identity; its address is Key.Public().Address().
	Key *keys.ServicePrivateKey
	// Ports are the virtual ports streams may ask for; empty accepts any.
	Ports []uint16
	// ClientAuth lists the client keys that may read the descriptor;
	// empty publishes it for anyone who knows the address.
	ClientAuth []keys.ClientAuthPublicKey
	// Intros is how many introduction points to keep [3].
	Intros int
	// Backlog is how many accepted streams wait for Accept [64].
	Backlog int
	// IntroRate and IntroBurst are the INTRODUCE2 limits asked of each
	// introduction point (0: the relay's default).
	IntroRate, IntroBurst uint16
	// Republish is how often the descriptor is published again [1 h].
	Republish time.Duration
	// DescriptorTTL is how long a published descriptor lives [3 h].
	DescriptorTTL time.Duration
	// PeriodLength is the time period of blinded keys [1 day].
	PeriodLength time.Duration
	// MaxRendezvous bounds the circuits joined to clients at once [256].
	MaxRendezvous int
	// Idle closes a joined circuit that carried no stream that long
	// [10 min].
	Idle time.Duration
	// Workers is how many introductions are served at once [4].
	Workers int
	// PoW configures the introduction puzzle.
	PoW PoWConfig
	// Now is the clock [time.Now].
	Now func() time.Time
}

func (c *ServiceConfig) setDefaults() {
	defaults.Set(&c.Intros, 3)
	c.Intros = min(c.Intros, hs.MaxIntros)
	defaults.Set(&c.Backlog, 64)
	defaults.Set(&c.Republish, time.Hour)
	defaults.Set(&c.DescriptorTTL, 3*time.Hour)
	c.DescriptorTTL = min(c.DescriptorTTL, hs.DescriptorMaxTTL)
	defaults.Set(&c.PeriodLength, hsblind.DefaultPeriodLength)
	defaults.Set(&c.MaxRendezvous, 256)
	defaults.Set(&c.Idle, 10*time.Minute)
	defaults.Set(&c.Workers, 4)
	c.PoW.setDefaults()
	if c.Now == nil {
		c.Now = time.Now
	}
}

// introPoint is one introduction point the service keeps.
type introPoint struct {
	relay keys.NodeID
	auth  ed25519.PrivateKey
	pub   [32]byte
	cc    *circuit.ClientCirc
}

// ServiceStats counts what a service did.
type ServiceStats struct {
	Intros        int    // introduction points established now
	Published     uint64 // descriptors stored
	Introductions uint64 // INTRODUCE2 received
	Rendezvous    uint64 // circuits joined to a client
	Dropped       uint64 // introductions dropped (queue full, bad, replayed, or failed puzzle)
	Replays       uint64 // introductions dropped as replays
	Effort        uint32 // the puzzle effort the descriptor asks for now
	Streams       uint64 // streams accepted
}

// Service is a published hidden service: a net.Listener whose Accept
// returns the streams clients open to it.
type Service struct {
	env     Env
	cfg     ServiceConfig
	pub     keys.ServicePublicKey
	addr    string // "<label>.dark"
	secrets hs.ServiceSecrets
	ports   map[uint16]bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	conns  chan net.Conn
	wake   chan struct{} // republish or replace introduction points now
	intake *intake

	mu      sync.Mutex
	intros  []*introPoint
	retired map[[32]byte]time.Time // auth keys of replaced intro points, until their descriptors expire
	seq     uint64
	rends   map[*circuit.ClientCirc]struct{}
	// blinded are blindedKeys' keys for the period blindedFor.
	blinded    []hsblind.BlindedPublicKey
	blindedFor hsblind.Period
	building   int // rendezvous circuits being built, counted against MaxRendezvous
	stats      ServiceStats
	closed     bool
}

// NewService starts a service: it establishes its introduction points and
// publishes its descriptor, returning once a first descriptor is stored.
func NewService(ctx context.Context, env Env, cfg ServiceConfig) (*Service, error) {
	s, err := newService(env, cfg)
	if err != nil {
		return nil, err
	}
	s.intake.start()
	if err := s.fillIntros(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.publish(ctx); err != nil {
		s.Close()
		return nil, err
	}
	s.wg.Go(s.maintain)
	return s, nil
}

// newService returns a service with its keys and intake, running nothing.
func newService(env Env, cfg ServiceConfig) (*Service, error) {
	if cfg.Key == nil {
		return nil, errors.New("onion: service needs a key")
	}
	cfg.setDefaults()
	secrets, err := hs.NewServiceSecrets(nil)
	if err != nil {
		return nil, err
	}
	s := &Service{
		env:     env,
		cfg:     cfg,
		pub:     cfg.Key.Public(),
		secrets: secrets,
		conns:   make(chan net.Conn, cfg.Backlog),
		wake:    make(chan struct{}, 1),
		retired: make(map[[32]byte]time.Time),
		rends:   make(map[*circuit.ClientCirc]struct{}),
	}
	s.addr = s.pub.Address()
	if len(cfg.Ports) > 0 {
		s.ports = make(map[uint16]bool, len(cfg.Ports))
		for _, p := range cfg.Ports {
			s.ports[p] = true
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.intake = newIntake(s, cfg.PoW)
	return s, nil
}

// Done is closed when the service is closed.
func (s *Service) Done() <-chan struct{} { return s.ctx.Done() }

// Address returns the service's "<label>.dark" address.
func (s *Service) Address() string { return s.addr }

// Stats returns the service's counters.
func (s *Service) Stats() ServiceStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Intros = len(s.intros)
	st.Effort = s.intake.effort()
	return st
}

// Accept waits for the next stream a client opened.
func (s *Service) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.ctx.Done():
		return nil, net.ErrClosed
	}
}

// Addr returns the service address with the first virtual port (0 when it
// accepts any).
func (s *Service) Addr() net.Addr {
	var port uint16
	if len(s.cfg.Ports) > 0 {
		port = s.cfg.Ports[0]
	}
	return Addr{Host: s.addr, Port: port}
}

// Close stops the service: its introduction points and rendezvous
// circuits close, and the published descriptor expires on its own.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var ccs []*circuit.ClientCirc
	for _, ip := range s.intros {
		ccs = append(ccs, ip.cc)
	}
	for cc := range s.rends {
		ccs = append(ccs, cc)
	}
	s.mu.Unlock()
	s.cancel()
	for _, cc := range ccs {
		cc.Close()
	}
	s.intake.stop()
	s.wg.Wait()
	for {
		select {
		case c := <-s.conns:
			c.Close()
		default:
			return nil
		}
	}
}

// Addr is a hidden-service address and virtual port as a net.Addr.
type Addr struct {
	Host string // "<label>.dark"
	Port uint16
}

// Network returns "dark".
func (a Addr) Network() string { return "dark" }

func (a Addr) String() string { return net.JoinHostPort(a.Host, strconv.Itoa(int(a.Port))) }

// fillIntros establishes introduction points until the service has
// cfg.Intros, trying each candidate relay at most once per call.
func (s *Service) fillIntros(ctx context.Context) error {
	s.mu.Lock()
	have := make(map[keys.NodeID]bool)
	for _, ip := range s.intros {
		have[ip.relay] = true
	}
	need := s.cfg.Intros - len(s.intros)
	s.mu.Unlock()
	if need <= 0 {
		return nil
	}
	var cands []keys.NodeID
	for _, id := range s.env.IntroCandidates() {
		if !have[id] {
			cands = append(cands, id)
		}
	}
	var (
		mu      sync.Mutex
		lastErr error
		wg      sync.WaitGroup
	)
	next := 0
	for w := 0; w < need; w++ {
		wg.Go(func() {
			for {
				mu.Lock()
				if next >= len(cands) {
					mu.Unlock()
					return
				}
				id := cands[next]
				next++
				mu.Unlock()
				ip, err := s.establish(ctx, id)
				if err == nil {
					s.mu.Lock()
					if s.closed {
						s.mu.Unlock()
						ip.cc.Close()
						return
					}
					s.intros = append(s.intros, ip)
					s.mu.Unlock()
					s.watch(ip)
					return
				}
				mu.Lock()
				lastErr = err
				mu.Unlock()
				if ctx.Err() != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	s.mu.Lock()
	n := len(s.intros)
	s.mu.Unlock()
	if n == 0 {
		if lastErr == nil {
			lastErr = errors.New("no relay serves as introduction point")
		}
		return fmt.Errorf("onion: no introduction point: %w", lastErr)
	}
	return nil
}

// establish makes relay id an introduction point with a fresh auth key.
func (s *Service) establish(ctx context.Context, id keys.NodeID) (*introPoint, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	ip := &introPoint{relay: id, auth: priv, pub: [32]byte(pub)}
	ip.cc, err = s.env.BuildTo(ctx, id)
	if err != nil {
		return nil, err
	}
	obs, _ := s.env.(introduceObserver)
	if err := ip.cc.EstablishIntro(ctx, priv, s.env.Network(), id, s.cfg.IntroRate, s.cfg.IntroBurst, func(body []byte) {
		if obs != nil {
			obs.ObserveIntroduce2(body)
		}
		s.intake.offer(body)
	}); err != nil {
		ip.cc.Close()
		return nil, err
	}
	return ip, nil
}

// introKeepAlive is how often a quiet introduction circuit sends DROP, so
// that no relay closes it as idle (relays allow an hour).
const introKeepAlive = 5 * time.Minute

// watch keeps ip's circuit alive and replaces ip when the circuit dies.
func (s *Service) watch(ip *introPoint) {
	s.wg.Go(func() {
		t := time.NewTicker(introKeepAlive)
		defer t.Stop()
	wait:
		for {
			select {
			case <-ip.cc.Done():
				break wait
			case <-s.ctx.Done():
				return
			case <-t.C:
				ip.cc.KeepAlive()
			}
		}
		s.mu.Lock()
		for i, x := range s.intros {
			if x == ip {
				s.intros = append(s.intros[:i], s.intros[i+1:]...)
				// Clients may still hold a descriptor naming it; an
				// introduction through it cannot arrive any more, but
				// keep its key until those descriptors expire anyway.
				s.retired[ip.pub] = s.cfg.Now().Add(s.cfg.DescriptorTTL)
				break
			}
		}
		s.mu.Unlock()
		s.env.Logf("onion: an introduction point closed; replacing it")
		s.poke()
	})
}

// poke asks maintain to replace introduction points and republish now.
func (s *Service) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// maintain republishes the descriptor on schedule and whenever the
// introduction points or the puzzle effort change.
func (s *Service) maintain() {
	first := s.cfg.Republish
	if s.short() {
		first = time.Second
	}
	t := time.NewTimer(first)
	defer t.Stop()
	retry := time.Duration(0)
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
		ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
		err := s.fillIntros(ctx)
		if err == nil {
			err = s.publish(ctx)
		}
		cancel()
		if s.ctx.Err() != nil {
			return
		}
		if err != nil || s.short() {
			// Back off, but keep trying: relays may come back.
			retry = min(max(2*retry, time.Second), time.Minute)
			if err != nil {
				s.env.Logf("onion: republishing failed, retrying in %v: %v", retry, err)
			} else {
				s.env.Logf("onion: short of introduction points, retrying in %v", retry)
			}
			t.Reset(retry)
			continue
		}
		retry = 0
		t.Reset(s.cfg.Republish)
	}
}

// short reports whether the service has fewer introduction points than
// configured.
func (s *Service) short() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.intros) < s.cfg.Intros
}

// descriptor returns the descriptor of the current introduction points.
func (s *Service) descriptor() *hs.Descriptor {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := &hs.Descriptor{
		Enc:       s.secrets.EncPublic(),
		KEM:       s.secrets.KEM.Public(),
		PoWSeed:   s.intake.seed,
		PoWEffort: s.intake.effort(),
	}
	for _, ip := range s.intros {
		d.Intros = append(d.Intros, hs.IntroPoint{Relay: ip.relay, AuthKey: ip.pub})
	}
	return d
}

// publish stores the descriptor under the blinded keys of this period and
// the next (in parallel), so clients whose clocks are on either side of a
// boundary find it. Only the current period's store must succeed.
func (s *Service) publish(ctx context.Context) error {
	d := s.descriptor()
	if len(d.Intros) == 0 {
		return errors.New("onion: no introduction point to publish")
	}
	now := s.cfg.Now()
	cur := hsblind.PeriodAt(now, s.cfg.PeriodLength)
	periods := []hsblind.Period{cur, cur.Next()}
	errs := make([]error, len(periods))
	var wg sync.WaitGroup
	for i, p := range periods {
		r, err := s.record(d, p, now)
		if err != nil {
			return fmt.Errorf("onion: publish: %w", err)
		}
		wg.Go(func() {
			if _, errs[i] = s.env.Put(ctx, r); errs[i] == nil {
				s.mu.Lock()
				s.stats.Published++
				s.mu.Unlock()
			}
		})
	}
	wg.Wait()
	if errs[0] != nil {
		return fmt.Errorf("onion: publish: %w", errs[0])
	}
	if errs[1] != nil {
		s.env.Logf("onion: publishing the next period's descriptor failed: %v", errs[1])
	}
	return nil
}

// record seals d for period p and signs it with the period's blinded key.
func (s *Service) record(d *hs.Descriptor, p hsblind.Period, now time.Time) (*dht.Record, error) {
	val, err := hs.SealDescriptor(nil, d, s.env.Network(), s.pub, p, s.cfg.ClientAuth)
	if err != nil {
		return nil, err
	}
	bk := hsblind.BlindPrivate(s.cfg.Key, s.env.Network(), p)
	s.mu.Lock()
	// Revisions count in milliseconds of publication and never go back,
	// so a republished descriptor always replaces the last one.
	s.seq = max(s.seq+1, uint64(max(now.UnixMilli(), 0)))
	seq := s.seq
	s.mu.Unlock()
	r := &dht.Record{
		Type:    hs.DescriptorType,
		Key:     dht.Key(hs.DescriptorKey(bk.Public())),
		Seq:     seq,
		Expires: now.Add(s.cfg.DescriptorTTL).Unix(),
		Value:   val,
	}
	if err := r.SignWith(s.env.Network(), keys.IdentityPublicKey(bk.Public()), bk.Sign); err != nil {
		return nil, err
	}
	return r, nil
}

// ourAuthKey reports whether k is the auth key of one of our introduction
// points (current, or replaced less than a descriptor lifetime ago).
func (s *Service) ourAuthKey(k [32]byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ip := range s.intros {
		if ip.pub == k {
			return true
		}
	}
	now := s.cfg.Now()
	for pk, until := range s.retired {
		if now.After(until) {
			delete(s.retired, pk)
		} else if pk == k {
			return true
		}
	}
	return false
}

// blindedKeys returns the blinded keys of the period of now and of the
// periods around it, for introductions made from a descriptor of either.
// They change once a period, and every introduction needs them, so they
// are computed once per period (BlindPublic is a scalar multiplication).
func (s *Service) blindedKeys() []hsblind.BlindedPublicKey {
	cur := hsblind.PeriodAt(s.cfg.Now(), s.cfg.PeriodLength)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.blinded != nil && s.blindedFor == cur {
		return s.blinded
	}
	ps := []hsblind.Period{cur, cur.Next()}
	if cur.Number > 0 {
		ps = append(ps, hsblind.Period{Number: cur.Number - 1, Length: cur.Length})
	}
	out := make([]hsblind.BlindedPublicKey, 0, len(ps))
	for _, p := range ps {
		if bk, err := hsblind.BlindPublic(s.pub, s.env.Network(), p); err == nil {
			out = append(out, bk)
		}
	}
	s.blinded, s.blindedFor = out, cur
	return out
}

// rendezvous meets a client: it builds a circuit to the rendezvous relay
// the client chose, serves streams on it, and joins the client's circuit.
func (s *Service) rendezvous(in hs.Intro, reply []byte, l *hs.Layer) error {
	// A slot is taken before the circuit is built, so that workers
	// building at once cannot pass the bound together.
	s.mu.Lock()
	if s.closed || len(s.rends)+s.building >= s.cfg.MaxRendezvous {
		s.mu.Unlock()
		return errors.New("onion: too many rendezvous circuits")
	}
	s.building++
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	cc, err := s.env.BuildTo(ctx, in.Rendezvous)
	s.mu.Lock()
	s.building--
	closed := s.closed
	if err == nil && !closed {
		s.rends[cc] = struct{}{}
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if closed {
		cc.Close()
		return ErrClosed
	}
	cc.Handle(circuit.KindTCP, circuit.StreamHandlerFunc(s.serveStream))
	s.wg.Go(func() {
		closeWhenIdle(s.ctx, cc, s.cfg.Idle)
		s.mu.Lock()
		delete(s.rends, cc)
		s.mu.Unlock()
	})
	if err := cc.Join(ctx, in.Cookie, reply, l); err != nil {
		cc.Close()
		return err
	}
	s.mu.Lock()
	s.stats.Rendezvous++
	s.mu.Unlock()
	return nil
}

// serveStream accepts a client's stream to one of the service's ports.
func (s *Service) serveStream(ctx context.Context, req *circuit.StreamRequest) {
	_, ps, err := net.SplitHostPort(req.Target)
	port, perr := strconv.ParseUint(ps, 10, 16)
	if err != nil || perr != nil {
		req.Reject(streamerr.BadAddress)
		return
	}
	if s.ports != nil && !s.ports[uint16(port)] {
		req.Reject(streamerr.ConnRefused)
		return
	}
	if len(s.conns) == cap(s.conns) {
		req.Reject(streamerr.ResourceLimit)
		return
	}
	st, err := req.Accept()
	if err != nil {
		return
	}
	c := &serviceConn{Stream: st, local: Addr{Host: s.addr, Port: uint16(port)}}
	select {
	case s.conns <- c:
		s.mu.Lock()
		s.stats.Streams++
		s.mu.Unlock()
	default:
		st.Close()
	}
}

// serviceConn is an accepted stream. Its RemoteAddr names no one: the
// service never learns where a client is.
type serviceConn struct {
	*circuit.Stream
	local Addr
}

func (c *serviceConn) LocalAddr() net.Addr  { return c.local }
func (c *serviceConn) RemoteAddr() net.Addr { return Addr{Host: "client.dark"} }

// Port returns the virtual port the client connected to.
func (c *serviceConn) Port() uint16 { return c.local.Port }

var _ net.Listener = (*Service)(nil)
