package overlay

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/crypto/hs"
	"github.com/darkmatter/darkmatter/crypto/hsblind"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/streamerr"
	"github.com/darkmatter/darkmatter/overlay/dht"
	"github.com/darkmatter/darkmatter/overlay/onion"
	"github.com/darkmatter/darkmatter/overlay/transport"
	"github.com/darkmatter/darkmatter/overlay/transport/memnet"
)

// fetchDescriptor looks up and opens pub's descriptor of the current
// period from node n, as a client does, through a circuit.
func fetchDescriptor(t testing.TB, n *Node, pub keys.ServicePublicKey) (*hs.Descriptor, hsblind.BlindedPublicKey) {
	t.Helper()
	d, bk, err := tryFetchDescriptor(n, pub)
	if err != nil {
		t.Fatal(err)
	}
	return d, bk
}

func tryFetchDescriptor(n *Node, pub keys.ServicePublicKey) (*hs.Descriptor, hsblind.BlindedPublicKey, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := hsblind.PeriodAt(time.Now(), n.cfg.HSPeriod)
	bk, err := hsblind.BlindPublic(pub, n.cfg.Network, p)
	if err != nil {
		return nil, bk, err
	}
	recs, err := hsEnv{n}.Get(ctx, hs.DescriptorType, dht.Key(hs.DescriptorKey(bk)))
	if err != nil {
		return nil, bk, err
	}
	d, err := hs.OpenDescriptor(recs[0].Value, n.cfg.Network, pub, p, nil)
	return d, bk, err
}

// echo writes msg after the target's "E" command when first, and reads it
// back.
func echo(t testing.TB, c net.Conn, first bool, msg string) {
	t.Helper()
	if first {
		msg2 := "E\n" + msg
		if _, err := io.WriteString(c, msg2); err != nil {
			t.Fatal(err)
		}
	} else if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
		t.Fatalf("echo %q: %v", got, err)
	}
}

// jointSpy is a joint hook for every relay: it counts what crosses joints,
// notes any message holding the marker, and flips a bit in a chosen message
// once armed.
type jointSpy struct {
	marker []byte
	bytes  atomic.Int64
	leaks  atomic.Int64
	// tamperIn counts down the messages until the one to modify: 0 is
	// disarmed, 1 modifies the next.
	tamperIn atomic.Int32
	tampered atomic.Int32
}

func (s *jointSpy) hook(b []byte) {
	s.bytes.Add(int64(len(b)))
	if bytes.Contains(b, s.marker) {
		s.leaks.Add(1)
	}
	for {
		n := s.tamperIn.Load()
		if n == 0 {
			return
		}
		if s.tamperIn.CompareAndSwap(n, n-1) {
			if n == 1 {
				b[len(b)/2] ^= 0x20
				s.tampered.Add(1)
			}
			return
		}
	}
}

// The rendezvous relay sees only ciphertext: 2 MiB each way of data full
// of a marker never show it at any relay's joint. A message changed at the
// joint, in either direction, fails the stream cleanly (an error, not EOF,
// and the circuit destroyed), and the service and the client node keep
// working for a new connection.
func TestHiddenServiceRendezvousSeesCiphertext(t *testing.T) {
	hn := newHiddenNet(t, "mem", 6)
	defer hn.close()
	spy := &jointSpy{marker: []byte("<<darkmatter plaintext marker>>")}
	for _, r := range hn.relays {
		r.sw.SetJointHook(spy.hook)
	}
	ctx := ctxT(t)
	addr, _ := hn.listen(t)

	c, err := hn.client.Dial(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	const size = 2 << 20
	payload := bytes.Repeat(spy.marker, size/len(spy.marker))
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(append([]byte("E\n"), payload...))
		werr <- err
	}()
	got := make([]byte, len(payload))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatal("echo differs")
	}
	c.Close()
	if n := spy.bytes.Load(); n < 2*int64(len(payload)) {
		t.Fatalf("the joints saw %d bytes of a %d-byte exchange: the hook missed the traffic", n, 2*len(payload))
	}
	if n := spy.leaks.Load(); n != 0 {
		t.Fatalf("%d messages showed the plaintext at a joint", n)
	}

	// Tamper with the next message (client to service), then with the
	// second (the service's echo to the client), each on its own circuit.
	for i, dir := range []string{"client to service", "service to client"} {
		c, err := hn.client.DialStream(ctx, addr, dir)
		if err != nil {
			t.Fatal(err)
		}
		echo(t, c, true, "ping")
		cc := c.(*circuit.Stream).Circuit()
		spy.tamperIn.Store(int32(i + 1))
		if _, err := io.WriteString(c, "pong"); err != nil {
			t.Fatalf("%s: write: %v", dir, err)
		}
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		n, err := io.ReadFull(c, make([]byte, 4))
		if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			t.Fatalf("%s: read after tampering: %d bytes, %v; want a stream error", dir, n, err)
		}
		select {
		case <-cc.Done():
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: the circuit survived a modified message", dir)
		}
		if _, err := io.WriteString(c, "more"); err == nil {
			t.Fatalf("%s: write on a failed stream succeeded", dir)
		}
		c.Close()
		t.Logf("%s: %v", dir, err)
	}
	if n := spy.tampered.Load(); n != 2 {
		t.Fatalf("tampered with %d messages, want 2", n)
	}

	// The service and the node still work: a new connection echoes.
	c, err = hn.client.Dial(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	echo(t, c, true, "still here")
	c.Close()
	if n := spy.leaks.Load(); n != 0 {
		t.Fatalf("%d messages showed the plaintext at a joint", n)
	}
}

// spyEnv is a node's hsEnv that keeps every INTRODUCE2 body its service
// receives: exactly what the introduction points saw of INTRODUCE1.
type spyEnv struct {
	hsEnv
	mu     sync.Mutex
	bodies [][]byte
}

func (e *spyEnv) ObserveIntroduce2(b []byte) {
	e.mu.Lock()
	e.bodies = append(e.bodies, append([]byte(nil), b...))
	e.mu.Unlock()
}

func (e *spyEnv) seen() [][]byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([][]byte(nil), e.bodies...)
}

// secretForms returns the byte strings that would reveal the service: its
// public key and its address label in either case.
func secretForms(pub keys.ServicePublicKey) [][]byte {
	label := strings.TrimSuffix(pub.Address(), ".dark")
	return [][]byte{pub[:], []byte(strings.ToLower(label)), []byte(strings.ToUpper(label))}
}

// Neither introduction points nor DHT nodes learn the address: the auth
// keys the introduction points hold (ESTABLISH_INTRO) are fresh keys, one
// per point, neither the service key nor a blinded key; the INTRODUCE
// bodies they pass on name only the auth key and hold neither key nor
// address; no record any node stores holds the service key or address.
func TestHiddenServiceIntroAndDHTNeverSeeAddress(t *testing.T) {
	hn := newHiddenNet(t, "mem", 6)
	defer hn.close()
	ctx := ctxT(t)
	key, err := keys.GenerateService(nil)
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Public()
	env := &spyEnv{hsEnv: hsEnv{hn.svc}}
	s, err := onion.NewService(ctx, env, ServiceConfig{Key: key, Ports: []uint16{80}})
	if err != nil {
		t.Fatal(err)
	}
	_, wait := serveListener(s)
	defer func() { s.Close(); wait() }()
	const conns = 4
	for i := range conns {
		c, err := hn.client.DialStream(ctx, pub.Address()+":80", string(rune('a'+i)))
		if err != nil {
			t.Fatal(err)
		}
		echo(t, c, true, "hello")
		c.Close()
	}

	forbidden := secretForms(pub)
	cur := hsblind.PeriodAt(time.Now(), 0)
	var blinded [][32]byte
	for _, p := range []hsblind.Period{{Number: cur.Number - 1, Length: cur.Length}, cur, cur.Next()} {
		bk, err := hsblind.BlindPublic(pub, hn.svc.cfg.Network, p)
		if err != nil {
			t.Fatal(err)
		}
		blinded = append(blinded, bk)
	}
	// The introduction points know auth keys only.
	d, _ := fetchDescriptor(t, hn.client, pub)
	auth := make(map[[32]byte]keys.NodeID)
	for _, ip := range d.Intros {
		if ip.AuthKey == [32]byte(pub) {
			t.Fatal("an intro auth key is the service key")
		}
		for _, bk := range blinded {
			if ip.AuthKey == bk {
				t.Fatal("an intro auth key is a blinded key")
			}
		}
		if _, dup := auth[ip.AuthKey]; dup {
			t.Fatal("two introduction points share an auth key: they could link their services")
		}
		auth[ip.AuthKey] = ip.Relay
		var holds bool
		for _, r := range hn.relays {
			if r.NodeID() == ip.Relay {
				holds = r.sw.Stats().IntroCircuits > 0
			}
		}
		if !holds {
			t.Fatal("a relay in the descriptor holds no intro circuit")
		}
	}
	if len(auth) != 3 {
		t.Fatalf("%d introduction points, want 3", len(auth))
	}
	bodies := env.seen()
	if len(bodies) < conns {
		t.Fatalf("the service saw %d introductions for %d connections", len(bodies), conns)
	}
	for _, b := range bodies {
		if _, ok := auth[[32]byte(b[:32])]; !ok {
			t.Fatal("an INTRODUCE names an auth key not in the descriptor")
		}
		for _, f := range forbidden {
			if bytes.Contains(b, f) {
				t.Fatal("an INTRODUCE body holds the service key or address")
			}
		}
		for _, bk := range blinded {
			if bytes.Contains(b, bk[:]) {
				t.Fatal("an INTRODUCE body holds a blinded key")
			}
		}
	}

	// The DHT holds records under blinded keys only.
	var descs int
	for _, n := range append([]*Node{hn.svc, hn.client}, hn.relays...) {
		dh := n.getDHT()
		if dh == nil {
			continue
		}
		for _, rec := range dh.Records() {
			if rec.Type == hs.DescriptorType {
				descs++
			}
			raw := rec.Marshal()
			for _, f := range forbidden {
				if bytes.Contains(raw, f) {
					t.Fatalf("a DHT record of type %d holds the service key or address", rec.Type)
				}
			}
			if rec.Owner == keys.IdentityPublicKey(pub) {
				t.Fatal("a record is owned by the service key")
			}
		}
	}
	if descs == 0 {
		t.Fatal("no descriptor stored anywhere: nothing was checked")
	}
}

// relayByID returns the harness relay with NodeID id.
func (h *harness) relayByID(id keys.NodeID) *Node {
	for _, r := range h.relays {
		if r.NodeID() == id {
			return r
		}
	}
	h.t.Fatal("no relay of ours")
	return nil
}

// connectEcho makes a new rendezvous with c and echoes a message on it.
func connectEcho(t testing.TB, c *onion.Client, pub keys.ServicePublicKey) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cc, err := c.Connect(ctx, pub)
	if err != nil {
		return err
	}
	defer cc.Close()
	st, err := cc.OpenStream(ctx, pub.Address()+":80")
	if err != nil {
		return err
	}
	defer st.Close()
	echo(t, st, true, "hi")
	return nil
}

// When the relays serving as its introduction points close, a service
// establishes new ones and republishes; a client holding the old
// descriptor fetches the new one and connects, and so does a new client.
func TestHiddenServiceIntroPointLoss(t *testing.T) {
	hn := newHiddenNet(t, "mem", 9)
	defer hn.close()
	ctx := ctxT(t)
	key, _ := keys.GenerateService(nil)
	pub := key.Public()
	s, err := hn.svc.ListenService(ctx, ServiceConfig{Key: key, Ports: []uint16{80}, Intros: 2})
	if err != nil {
		t.Fatal(err)
	}
	_, wait := serveListener(s)
	defer func() { s.Close(); wait() }()
	// A short rendezvous timeout: with two relays gone, a service's circuit
	// to the rendezvous relay may fail (the directory still lists them),
	// and the client then tries again sooner.
	ccfg := onion.ClientConfig{RendezvousTimeout: 2 * time.Second}
	cached := onion.NewClient(hsEnv{hn.client}, ccfg)
	defer cached.Close()
	if err := connectEcho(t, cached, pub); err != nil {
		t.Fatal(err)
	}
	d, _ := fetchDescriptor(t, hn.client, pub)
	lost := make(map[keys.NodeID]bool)
	for _, ip := range d.Intros {
		lost[ip.Relay] = true
	}
	published := s.Stats().Published
	start := time.Now()
	for id := range lost {
		hn.relayByID(id).Close()
	}
	waitFor(t, func() bool {
		st := s.Stats()
		if st.Intros != 2 || st.Published <= published {
			return false
		}
		d, _, err := tryFetchDescriptor(hn.client, pub)
		if err != nil || len(d.Intros) != 2 {
			return false
		}
		for _, ip := range d.Intros {
			if lost[ip.Relay] {
				return false
			}
		}
		return true
	}, "new introduction points published")
	republished := time.Since(start)
	if err := connectEcho(t, cached, pub); err != nil {
		t.Fatalf("client with the old descriptor: %v", err)
	}
	reachable := time.Since(start)
	if st := cached.Stats(); st.Fetched != 2 || st.IntroFailures == 0 {
		t.Fatalf("client with the old descriptor: %+v; want a failed introduction, then a second fetch", st)
	}
	fresh := onion.NewClient(hsEnv{hn.client}, ccfg)
	defer fresh.Close()
	if err := connectEcho(t, fresh, pub); err != nil {
		t.Fatalf("new client: %v", err)
	}
	t.Logf("introduction points lost: republished after %v, reachable with the old descriptor after %v", republished.Round(time.Millisecond), reachable.Round(time.Millisecond))
}

// newClientNode starts another client node like the harness's, at memnet
// address ip; it closes with the test.
func (hn *hiddenNet) newClientNode(t testing.TB, ip string) *Node {
	t.Helper()
	cfg := hn.client.cfg
	cfg.Keys = nil
	if hn.mem != nil {
		cfg.Transports = transport.Registry{memnet.Scheme: hn.mem.Host(ip)}
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if err := n.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	return n
}

// sendIntroduce sends one INTRODUCE1 to ip on a new one-hop circuit, as an
// attacker that cares nothing for its own anonymity does, and returns the
// introduction point's status.
func sendIntroduce(ctx context.Context, n *Node, ip hs.IntroPoint, msg []byte) (byte, error) {
	d := n.dir.Get(ip.Relay)
	if d == nil {
		return 0, errors.New("introduction point not in the directory")
	}
	hop, ok := n.hopOf(d)
	if !ok {
		return 0, errors.New("no transport to the introduction point")
	}
	cc, err := n.sw.BuildCircuit(ctx, []circuit.Hop{hop})
	if err != nil {
		return 0, err
	}
	defer cc.Close()
	return cc.Introduce(ctx, ip.AuthKey, msg)
}

// introduceMsg makes an INTRODUCE1 encrypted part for the service of d.
func introduceMsg(t testing.TB, network string, pub keys.ServicePublicKey, bk hsblind.BlindedPublicKey, d *hs.Descriptor, ip hs.IntroPoint, in hs.Intro) []byte {
	_, msg, err := hs.ClientIntroduce(nil, hs.Target{Network: network, Identity: pub, Blinded: bk, AuthKey: ip.AuthKey, Enc: d.Enc, KEM: d.KEM}, in)
	if err != nil {
		t.Error(err)
	}
	return msg
}

// introFlood sends valid introductions without a proof of work, each on a
// new circuit, naming a real rendezvous relay (of rps in turn) and a cookie
// no one waits for: every one costs the service a circuit. It stops by itself after max
// introductions or a deadline.
type introFlood struct {
	sent, passed, limited, failed atomic.Int64
	cancel                        context.CancelFunc
	wg                            sync.WaitGroup
}

func startIntroFlood(t testing.TB, n *Node, pub keys.ServicePublicKey, bk hsblind.BlindedPublicKey, d *hs.Descriptor, rps []keys.NodeID, workers int, max int64, limit time.Duration) *introFlood {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	f := &introFlood{cancel: cancel}
	for w := range workers {
		f.wg.Go(func() {
			for i := w; ctx.Err() == nil && f.sent.Add(1) <= max; i += workers {
				ip := d.Intros[i%len(d.Intros)]
				in := hs.Intro{Rendezvous: rps[i%len(rps)]}
				rand.Read(in.Cookie[:])
				status, err := sendIntroduce(ctx, n, ip, introduceMsg(t, n.cfg.Network, pub, bk, d, ip, in))
				switch {
				case err != nil:
					f.failed.Add(1)
				case status == circuit.IntroStatusPassed:
					f.passed.Add(1)
				default:
					f.limited.Add(1)
				}
			}
		})
	}
	return f
}

func (f *introFlood) end() { f.cancel(); f.wg.Wait() }

// An INTRODUCE flood against a service with one worker and a short queue:
// the service drops introductions and raises the puzzle effort, which it
// republishes; a client that solves the puzzle of the descriptor it
// fetches connects during the flood; after the flood the effort decays
// to 0, republished too.
func TestHiddenServiceIntroduceFlood(t *testing.T) {
	hn := newHiddenNet(t, "mem", 6)
	defer hn.close()
	ctx := ctxT(t)
	key, _ := keys.GenerateService(nil)
	pub := key.Public()
	s, err := hn.svc.ListenService(ctx, ServiceConfig{Key: key, Ports: []uint16{80}, Workers: 1,
		IntroRate: 200, IntroBurst: 2000, // the introduction points are not the bottleneck
		PoW: onion.PoWConfig{Update: 200 * time.Millisecond, QueueLen: 8, MinEffort: 64, MaxEffort: 1 << 12}})
	if err != nil {
		t.Fatal(err)
	}
	_, wait := serveListener(s)
	defer func() { s.Close(); wait() }()
	attacker := hn.newClientNode(t, "10.202.0.1")
	d, bk := fetchDescriptor(t, attacker, pub)
	if d.PoWEffort != 0 {
		t.Fatalf("effort %d before any attack", d.PoWEffort)
	}
	var rps []keys.NodeID
	for _, r := range hn.relays {
		rps = append(rps, r.NodeID())
	}
	f := startIntroFlood(t, attacker, pub, bk, d, rps, 8, 20000, 40*time.Second)
	defer f.end()

	waitFor(t, func() bool { return s.Stats().Effort > 0 }, "the effort to rise")
	waitFor(t, func() bool {
		d, _, err := tryFetchDescriptor(hn.client, pub)
		return err == nil && d.PoWEffort > 0
	}, "a descriptor asking for work")
	if st := s.Stats(); st.Dropped == 0 {
		t.Fatalf("the effort rose without a dropped introduction: %+v", st)
	}
	sentBefore := f.sent.Load()
	legit := onion.NewClient(hsEnv{hn.client}, onion.ClientConfig{RendezvousTimeout: 5 * time.Second})
	defer legit.Close()
	start := time.Now()
	if err := connectEcho(t, legit, pub); err != nil {
		t.Fatalf("a client solving the puzzle: %v (service %+v)", err, s.Stats())
	}
	took := time.Since(start)
	during := s.Stats()
	if st := legit.Stats(); st.IntroFailures != 0 {
		// The solved introduction goes before every unsolved one: the
		// first introduction point tried must do.
		t.Fatalf("a client solving the puzzle needed retries: %+v, %v", st, took)
	}
	if f.sent.Load() == sentBefore || f.sent.Load() > 20000 {
		t.Fatal("the flood was not running while the client connected")
	}
	f.end()
	t.Logf("flood: %d introductions sent (%d passed, %d limited at the introduction points, %d failed); service %+v; a solving client connected in %v",
		f.sent.Load(), f.passed.Load(), f.limited.Load(), f.failed.Load(), during, took.Round(time.Millisecond))

	waitFor(t, func() bool {
		if s.Stats().Effort != 0 {
			return false
		}
		d, _, err := tryFetchDescriptor(hn.client, pub)
		return err == nil && d.PoWEffort == 0
	}, "the effort to decay to 0")
}

// An INTRODUCE1 sent twice is served once (the second is a replay); one
// claiming an effort its nonce does not meet is dropped; one whose nonce
// does is served.
func TestHiddenServiceIntroduceReplayAndBadPoW(t *testing.T) {
	hn := newHiddenNet(t, "mem", 6)
	defer hn.close()
	ctx := ctxT(t)
	key, _ := keys.GenerateService(nil)
	pub := key.Public()
	s, err := hn.svc.ListenService(ctx, ServiceConfig{Key: key, Ports: []uint16{80}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	attacker := hn.newClientNode(t, "10.202.0.1")
	d, bk := fetchDescriptor(t, attacker, pub)
	ip := d.Intros[0]
	send := func(in hs.Intro) []byte {
		msg := introduceMsg(t, attacker.cfg.Network, pub, bk, d, ip, in)
		if status, err := sendIntroduce(ctx, attacker, ip, msg); err != nil || status != circuit.IntroStatusPassed {
			t.Fatalf("introduction point answered %d, %v", status, err)
		}
		return msg
	}
	newIntro := func(effort uint32) hs.Intro {
		in := hs.Intro{Rendezvous: hn.relays[1].NodeID(), PoWEffort: effort}
		rand.Read(in.Cookie[:])
		return in
	}
	want := func(what string, w onion.ServiceStats) {
		t.Helper()
		waitFor(t, func() bool {
			st := s.Stats()
			return st.Introductions == w.Introductions && st.Replays == w.Replays && st.Dropped == w.Dropped && st.Rendezvous == w.Rendezvous
		}, what)
	}
	msg := send(newIntro(0))
	if status, err := sendIntroduce(ctx, attacker, ip, msg); err != nil || status != circuit.IntroStatusPassed {
		t.Fatalf("replay: introduction point answered %d, %v", status, err)
	}
	want("a replay dropped", onion.ServiceStats{Introductions: 2, Replays: 1, Dropped: 1, Rendezvous: 1})

	bad := newIntro(500)
	for hs.CheckPoW(d.PoWSeed, bk, bad.PoWEffort, bad.PoWNonce) {
		bad.PoWNonce[0]++
	}
	send(bad)
	good := newIntro(500)
	if good.PoWNonce, err = hs.SolvePoW(ctx, d.PoWSeed, bk, good.PoWEffort); err != nil {
		t.Fatal(err)
	}
	send(good)
	// The decryption is serial: once the good one is served, the bad one
	// was judged.
	want("a bad proof dropped, a good one served", onion.ServiceStats{Introductions: 4, Replays: 1, Dropped: 2, Rendezvous: 2})
}

// Streams the service does not serve fail with the service's reason and
// leave the rendezvous circuit and its other streams working: a port it
// does not serve is refused (ConnRefused), and a full backlog rejects
// (ResourceLimit) until Accept makes room. After Close, Accept returns
// net.ErrClosed and none of the service's goroutines is left.
func TestHiddenServiceStreamRefusals(t *testing.T) {
	hn := newHiddenNet(t, "mem", 6)
	defer hn.close()
	ctx := ctxT(t)
	key, _ := keys.GenerateService(nil)
	addr := key.Public().Address()
	s, err := hn.svc.ListenService(ctx, ServiceConfig{Key: key, Ports: []uint16{80, 443}, Backlog: 1})
	if err != nil {
		t.Fatal(err)
	}
	accept := func() net.Conn {
		t.Helper()
		c, err := s.Accept()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c1, err := hn.client.Dial(ctx, "tcp", addr+":80")
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	sc1 := accept()
	if p := sc1.(interface{ Port() uint16 }).Port(); p != 80 {
		t.Fatalf("accepted port %d", p)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { defer sc1.Close(); serveTarget(sc1) })
	echo(t, c1, true, "one")

	if _, err := hn.client.Dial(ctx, "tcp", addr+":81"); !errors.Is(err, streamerr.New(streamerr.ConnRefused)) {
		t.Fatalf("a port the service does not serve: %v", err)
	}
	echo(t, c1, false, "still one") // the refusal left the circuit alone

	// The backlog holds one stream; the next is rejected until Accept.
	c2, err := hn.client.Dial(ctx, "tcp", addr+":443")
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := hn.client.Dial(ctx, "tcp", addr+":443"); !errors.Is(err, streamerr.New(streamerr.ResourceLimit)) {
		t.Fatalf("a full backlog: %v", err)
	}
	sc2 := accept()
	wg.Go(func() { defer sc2.Close(); serveTarget(sc2) })
	echo(t, c2, true, "two")
	c3, err := hn.client.Dial(ctx, "tcp", addr+":443")
	if err != nil {
		t.Fatalf("after Accept made room: %v", err)
	}
	defer c3.Close()
	if st := hn.client.onionClient().Stats(); st.Rendezvous != 1 {
		t.Fatalf("client %+v: the refusals cost a rendezvous", st)
	}
	if st := s.Stats(); st.Streams != 3 || st.Rendezvous != 1 {
		t.Fatalf("service %+v", st)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
	waitFor(t, func() bool { return !goroutinesIn("overlay/onion.(*Service)", "overlay/onion.(*intake)") }, "the service's goroutines to end")
	// Its streams ended with it.
	c1.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := c1.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("a stream outlived the service: %v", err)
	}
}

// goroutinesIn reports whether any goroutine runs a function whose name
// starts with one of prefixes (of the module).
func goroutinesIn(prefixes ...string) bool {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	for _, p := range prefixes {
		if bytes.Contains(buf, []byte("github.com/darkmatter/darkmatter/"+p)) {
			return true
		}
	}
	return false
}

// MaxRendezvous bounds the circuits a service joins to clients, also when
// its workers build at once; a client over the bound is never met, and is
// once a slot frees.
func TestHiddenServiceMaxRendezvous(t *testing.T) {
	hn := newHiddenNet(t, "mem", 6)
	defer hn.close()
	ctx := ctxT(t)
	key, _ := keys.GenerateService(nil)
	pub := key.Public()
	const max = 2
	s, err := hn.svc.ListenService(ctx, ServiceConfig{Key: key, Ports: []uint16{80}, MaxRendezvous: max, Workers: 4, Intros: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	joints := func() int {
		n := 0
		for _, r := range hn.relays {
			n += r.sw.Stats().Joints
		}
		return n
	}
	newClient := func() *onion.Client {
		c := onion.NewClient(hsEnv{hn.client}, onion.ClientConfig{RendezvousTimeout: time.Second})
		t.Cleanup(func() { c.Close() })
		return c
	}
	var (
		mu     sync.Mutex
		joined []*circuit.ClientCirc
		errs   []error
		wg     sync.WaitGroup
	)
	for range 2 * max {
		c := newClient()
		wg.Go(func() {
			cc, err := c.Connect(ctx, pub)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			} else {
				joined = append(joined, cc)
			}
		})
	}
	wg.Wait()
	defer func() {
		for _, cc := range joined {
			cc.Close()
		}
	}()
	if len(joined) != max || joints() != max {
		t.Fatalf("%d clients met, %d joints, for a bound of %d (errors %v)", len(joined), joints(), max, errs)
	}
	for _, err := range errs {
		if !errors.Is(err, onion.ErrIntroTimeout) {
			t.Fatalf("a client over the bound: %v, want ErrIntroTimeout", err)
		}
	}
	joined[0].Close()
	waitFor(t, func() bool { return joints() == max-1 }, "a joint to close")
	cc, err := newClient().Connect(ctx, pub)
	if err != nil {
		t.Fatalf("once a slot is free: %v", err)
	}
	joined = append(joined, cc)
}
