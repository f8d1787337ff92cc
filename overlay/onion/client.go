package onion

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/crypto/hs"
	"github.com/darkmatter/darkmatter/crypto/hsblind"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/defaults"
	"github.com/darkmatter/darkmatter/overlay/dht"
)

// ClientConfig configures a Client. Zero fields take the defaults in
// brackets.
type ClientConfig struct {
	// AuthKeys are tried on descriptors that demand client authorisation.
	AuthKeys []*keys.ClientAuthPrivateKey
	// PeriodLength is the time period of blinded keys [1 day].
	PeriodLength time.Duration
	// IntroTimeout bounds one introduction: circuits, INTRODUCE1 and its
	// acknowledgement [15 s].
	IntroTimeout time.Duration
	// RendezvousTimeout bounds the wait for the service at the rendezvous
	// relay once introduced [15 s].
	RendezvousTimeout time.Duration
	// MaxCached bounds the descriptors and rendezvous circuits kept [256].
	MaxCached int
	// MaxEffort is the most puzzle effort the client spends [1<<20].
	MaxEffort uint32
	// Idle closes a joined circuit that carried no stream that long
	// [5 min].
	Idle time.Duration
	// Now is the clock [time.Now].
	Now func() time.Time
}

func (c *ClientConfig) setDefaults() {
	defaults.Set(&c.PeriodLength, hsblind.DefaultPeriodLength)
	defaults.Set(&c.IntroTimeout, 15*time.Second)
	defaults.Set(&c.RendezvousTimeout, 15*time.Second)
	defaults.Set(&c.MaxCached, 256)
	defaults.Set(&c.Idle, 5*time.Minute)
	if c.MaxEffort == 0 {
		c.MaxEffort = 1 << 20
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// ClientStats counts what a client did.
type ClientStats struct {
	Fetched       uint64 // descriptors fetched from the DHT
	Rendezvous    uint64 // circuits joined to a service
	Reused        uint64 // streams opened on a circuit already joined
	IntroFailures uint64 // introductions that failed
}

// Client connects to hidden services.
type Client struct {
	env    Env
	cfg    ClientConfig
	ctx    context.Context // ends with Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	descs  map[keys.ServicePublicKey]*cachedDesc
	circs  map[circKey]*circuit.ClientCirc
	stats  ClientStats
	closed bool
}

type cachedDesc struct {
	d       *hs.Descriptor
	blinded hsblind.BlindedPublicKey
	expires time.Time
}

type circKey struct {
	svc       keys.ServicePublicKey
	isolation string
}

// NewClient returns a client.
func NewClient(env Env, cfg ClientConfig) *Client {
	cfg.setDefaults()
	c := &Client{
		env:   env,
		cfg:   cfg,
		descs: make(map[keys.ServicePublicKey]*cachedDesc),
		circs: make(map[circKey]*circuit.ClientCirc),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c
}

// Stats returns the client's counters.
func (c *Client) Stats() ClientStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Close closes the rendezvous circuits it keeps; Dial and Connect then
// return ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	c.circs = make(map[circKey]*circuit.ClientCirc)
	c.mu.Unlock()
	c.cancel() // the idle watchers close every joined circuit
	c.wg.Wait()
	return nil
}

// Dial opens a stream to port of the service svc. Streams of one isolation
// key share a rendezvous circuit to the service; another key gets its own.
// A stream the service refuses (a port it does not serve, a full backlog)
// fails with the service's reason and leaves the shared circuit and its
// other streams alone.
func (c *Client) Dial(ctx context.Context, svc keys.ServicePublicKey, port uint16, isolation string) (net.Conn, error) {
	if c.isClosed() {
		return nil, ErrClosed
	}
	target := net.JoinHostPort(svc.Address(), strconv.Itoa(int(port)))
	k := circKey{svc, isolation}
	if cc := c.joined(k); cc != nil {
		st, err := cc.OpenStream(ctx, target)
		if err == nil {
			c.mu.Lock()
			c.stats.Reused++
			c.mu.Unlock()
			return st, nil
		}
		if ctx.Err() != nil || alive(cc) {
			// The service answered: the circuit is fine, the stream
			// was refused.
			return nil, err
		}
		cc.Close() // a dead circuit is worth nothing
	}
	cc, err := c.Connect(ctx, svc)
	if err != nil {
		return nil, err
	}
	st, err := cc.OpenStream(ctx, target)
	if err != nil {
		cc.Close()
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		cc.Close()
		return nil, ErrClosed
	}
	idle := c.cfg.Idle
	var conn net.Conn = st
	if old := c.circs[k]; old != nil && alive(old) || old == nil && len(c.circs) >= c.cfg.MaxCached {
		// Another Dial joined first, or the cache is full: this circuit
		// serves this stream only. It closes with the stream, so that
		// it holds no rendezvous at the service, or soon after the
		// stream ends without a Close.
		idle = idleCheck
		conn = &soleStream{Stream: st}
	} else {
		c.circs[k] = cc
	}
	c.wg.Go(func() {
		closeWhenIdle(c.ctx, cc, idle)
		c.mu.Lock()
		if c.circs[k] == cc {
			delete(c.circs, k)
		}
		c.mu.Unlock()
	})
	return conn, nil
}

// alive reports whether cc has not been destroyed.
func alive(cc *circuit.ClientCirc) bool {
	select {
	case <-cc.Done():
		return false
	default:
		return true
	}
}

// soleStream is the only stream of a rendezvous circuit no one else uses:
// closing it closes the circuit.
type soleStream struct{ *circuit.Stream }

func (s *soleStream) Close() error {
	err := s.Stream.Close()
	s.Circuit().Close()
	return err
}

func (c *Client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// joined returns the live rendezvous circuit of k, if any.
func (c *Client) joined(k circKey) *circuit.ClientCirc {
	c.mu.Lock()
	defer c.mu.Unlock()
	cc := c.circs[k]
	if cc == nil {
		return nil
	}
	select {
	case <-cc.Done():
		delete(c.circs, k)
		return nil
	default:
		return cc
	}
}

// Connect makes a new rendezvous with svc and returns the joined circuit,
// on which the caller opens streams and which it closes.
func (c *Client) Connect(ctx context.Context, svc keys.ServicePublicKey) (*circuit.ClientCirc, error) {
	if c.isClosed() {
		return nil, ErrClosed
	}
	var lastErr error
	for attempt := range 2 {
		cd, err := c.descriptor(ctx, svc, attempt > 0)
		if err != nil {
			return nil, err
		}
		for _, i := range mrand.Perm(len(cd.d.Intros)) {
			cc, err := c.introduce(ctx, svc, cd, cd.d.Intros[i])
			if err == nil {
				c.mu.Lock()
				c.stats.Rendezvous++
				c.mu.Unlock()
				return cc, nil
			}
			c.mu.Lock()
			c.stats.IntroFailures++
			c.mu.Unlock()
			lastErr = err
			if ctx.Err() != nil {
				return nil, err
			}
			if errors.Is(err, ErrIntroTimeout) && attempt == 0 {
				// Introduced but never met: the service may be under
				// attack and ask for more work than our descriptor
				// says; fetch it again before trying another point.
				break
			}
		}
		// Every introduction point failed: the descriptor may be stale.
		c.mu.Lock()
		delete(c.descs, svc)
		c.mu.Unlock()
	}
	return nil, lastErr
}

// introduce runs one introduction through ip and waits for the service at
// a rendezvous relay.
func (c *Client) introduce(ctx context.Context, svc keys.ServicePublicKey, cd *cachedDesc, ip hs.IntroPoint) (*circuit.ClientCirc, error) {
	ictx, cancel := context.WithTimeout(ctx, c.cfg.IntroTimeout)
	defer cancel()

	// The intro circuit and the rendezvous circuit are built at once.
	type built struct {
		cc  *circuit.ClientCirc
		err error
	}
	introc := make(chan built, 1)
	go func() {
		cc, err := c.env.BuildTo(ictx, ip.Relay)
		introc <- built{cc, err}
	}()
	closeIntro := func() {
		if b := <-introc; b.cc != nil {
			b.cc.Close()
		}
	}
	rp, err := c.env.BuildRendezvous(ictx)
	if err != nil {
		closeIntro()
		return nil, fmt.Errorf("%w: no rendezvous circuit: %w", ErrRendezvousFailed, err)
	}
	hops := rp.Hops()
	in := hs.Intro{Rendezvous: hops[len(hops)-1].Identity.NodeID()}
	rand.Read(in.Cookie[:])
	if e := cd.d.PoWEffort; e > 0 {
		in.PoWEffort = min(e, c.cfg.MaxEffort)
		if in.PoWNonce, err = hs.SolvePoW(ictx, cd.d.PoWSeed, cd.blinded, in.PoWEffort); err != nil {
			rp.Close()
			closeIntro()
			return nil, fmt.Errorf("%w: puzzle: %w", ErrIntroFailed, err)
		}
	}
	h, msg, err := hs.ClientIntroduce(nil, hs.Target{
		Network:  c.env.Network(),
		Identity: svc,
		Blinded:  cd.blinded,
		AuthKey:  ip.AuthKey,
		Enc:      cd.d.Enc,
		KEM:      cd.d.KEM,
	}, in)
	if err != nil {
		rp.Close()
		closeIntro()
		return nil, fmt.Errorf("%w: %w", ErrDescriptorInvalid, err)
	}
	if err := rp.EstablishJoint(ictx, in.Cookie, func(payload []byte) (circuit.E2ELayer, error) {
		return h.Finish(payload)
	}); err != nil {
		rp.Close()
		closeIntro()
		return nil, fmt.Errorf("%w: %w", ErrRendezvousFailed, err)
	}
	b := <-introc
	if b.err != nil {
		rp.Close()
		return nil, fmt.Errorf("%w: no circuit to the introduction point: %w", ErrIntroFailed, b.err)
	}
	status, err := b.cc.Introduce(ictx, ip.AuthKey, msg)
	b.cc.Close() // one introduction per circuit
	if err != nil || status != 0 {
		rp.Close()
		if err == nil {
			err = fmt.Errorf("introduction point answered %d", status)
		}
		return nil, fmt.Errorf("%w: %w", ErrIntroFailed, err)
	}
	wctx, wcancel := context.WithTimeout(ctx, c.cfg.RendezvousTimeout)
	defer wcancel()
	if err := rp.WaitJoined(wctx); err != nil {
		rp.Close()
		if ctx.Err() == nil && wctx.Err() != nil {
			return nil, ErrIntroTimeout
		}
		return nil, fmt.Errorf("%w: %w", ErrRendezvousFailed, err)
	}
	return rp, nil
}

// descriptor returns svc's descriptor, from the cache unless refresh.
func (c *Client) descriptor(ctx context.Context, svc keys.ServicePublicKey, refresh bool) (*cachedDesc, error) {
	now := c.cfg.Now()
	c.mu.Lock()
	cd := c.descs[svc]
	c.mu.Unlock()
	if cd != nil && !refresh && now.Before(cd.expires) {
		return cd, nil
	}
	cd, err := c.fetch(ctx, svc, now)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.descs) >= c.cfg.MaxCached {
		for k := range c.descs { // forget any one
			delete(c.descs, k)
			break
		}
	}
	c.descs[svc] = cd
	c.stats.Fetched++
	c.mu.Unlock()
	return cd, nil
}

// fetch looks the descriptor up under the blinded key of the current
// period, then of the neighbouring period when near a boundary (the
// service publishes for this period and the next).
func (c *Client) fetch(ctx context.Context, svc keys.ServicePublicKey, now time.Time) (*cachedDesc, error) {
	cur := hsblind.PeriodAt(now, c.cfg.PeriodLength)
	periods := []hsblind.Period{cur}
	if now.Sub(cur.Start()) < time.Hour && cur.Number > 0 {
		periods = append(periods, hsblind.Period{Number: cur.Number - 1, Length: cur.Length})
	}
	var lastErr error = ErrDescriptorNotFound
	for _, p := range periods {
		bk, err := hsblind.BlindPublic(svc, c.env.Network(), p)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrDescriptorInvalid, err)
		}
		recs, err := c.env.Get(ctx, hs.DescriptorType, dht.Key(hs.DescriptorKey(bk)))
		if err != nil {
			if !errors.Is(err, dht.ErrNotFound) {
				lastErr = fmt.Errorf("%w: %w", ErrDescriptorNotFound, err)
			}
			if ctx.Err() != nil {
				return nil, lastErr
			}
			continue
		}
		for _, r := range recs { // highest Seq first
			if r.Owner != keys.IdentityPublicKey(bk) {
				continue // another owner's record cannot be ours
			}
			d, err := c.open(r.Value, svc, p)
			if err != nil {
				lastErr = err
				continue
			}
			if len(d.Intros) == 0 {
				lastErr = fmt.Errorf("%w: no introduction points", ErrDescriptorInvalid)
				continue
			}
			return &cachedDesc{d: d, blinded: bk, expires: r.ExpiresAt()}, nil
		}
	}
	return nil, lastErr
}

// open decrypts a descriptor with each client key in turn.
func (c *Client) open(v []byte, svc keys.ServicePublicKey, p hsblind.Period) (*hs.Descriptor, error) {
	d, err := hs.OpenDescriptor(v, c.env.Network(), svc, p, nil)
	if err == nil {
		return d, nil
	}
	if !errors.Is(err, hs.ErrNotAuthorised) {
		return nil, fmt.Errorf("%w: %w", ErrDescriptorInvalid, err)
	}
	if len(c.cfg.AuthKeys) == 0 {
		return nil, ErrClientAuthMissing
	}
	for _, k := range c.cfg.AuthKeys {
		if d, err = hs.OpenDescriptor(v, c.env.Network(), svc, p, k); err == nil {
			return d, nil
		}
	}
	if errors.Is(err, hs.ErrNotAuthorised) {
		return nil, ErrClientAuthWrong
	}
	return nil, fmt.Errorf("%w: %w", ErrDescriptorInvalid, err)
}
