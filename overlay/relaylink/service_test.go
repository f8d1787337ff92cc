package relaylink

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/link"
)

// testRelay is a Service behind a loopback listener.
type testRelay struct {
	svc  *Service
	ln   net.Listener
	addr string
	wg   sync.WaitGroup

	mu    sync.Mutex
	conns []net.Conn // server sides, closed at the end of the test
}

func newRelay(t *testing.T, cfg Config) *testRelay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &testRelay{svc: NewService(cfg), ln: ln, addr: ln.Addr().String()}
	r.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conns = append(r.conns, c)
			r.mu.Unlock()
			r.wg.Go(func() { r.svc.ServeConn(c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		r.svc.Close()
		r.mu.Lock()
		for _, c := range r.conns {
			c.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
	})
	return r
}

// dial opens a connection to the relay, closed at the end of the test.
func (r *testRelay) dial(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", r.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// raw sends hdr on a fresh connection and returns the relay's status
// byte, or -1 if the relay closed the connection without one.
func (r *testRelay) raw(t *testing.T, hdr []byte) (int, net.Conn) {
	t.Helper()
	c := r.dial(t)
	if _, err := c.Write(hdr); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("no answer to header %x", hdr)
		}
		return -1, c
	}
	_ = c.SetReadDeadline(time.Time{})
	return int(b[0]), c
}

func connectHeader(network string, target keys.LinkPublicKey) []byte {
	h := Header{Network: link.NetworkID(network), Kind: KindConnect, Target: target}
	return h.Marshal()
}

func acceptHeader(network string, token [TokenSize]byte) []byte {
	h := Header{Network: link.NetworkID(network), Kind: KindAccept, Token: token}
	return h.Marshal()
}

// fakePeer is a reservation link: it records the messages the relay sends.
type fakePeer struct {
	key  keys.LinkPublicKey
	addr net.Addr

	mu       sync.Mutex
	msgs     []Msg
	incoming chan [TokenSize]byte
}

func newPeer(id byte, ip string) *fakePeer {
	return &fakePeer{key: keys.LinkPublicKey{id, 0xee}, addr: &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000 + int(id)},
		incoming: make(chan [TokenSize]byte, 64)}
}

func (p *fakePeer) Send(c *cell.Cell) error {
	if c.Circ() != 0 || c.Cmd() != cell.CmdNAT {
		panic("relaylink test: a cell that is not a NAT link cell")
	}
	m, err := ParseMsg(c.Body())
	if err != nil {
		panic(err)
	}
	m.Punch = bytes.Clone(m.Punch)
	c.Free()
	p.mu.Lock()
	p.msgs = append(p.msgs, m)
	p.mu.Unlock()
	if m.Type == TypeIncoming {
		select {
		case p.incoming <- m.Token:
		default:
			panic("relaylink test: too many INCOMINGs")
		}
	}
	return nil
}

func (p *fakePeer) Peer() keys.LinkPublicKey { return p.key }
func (p *fakePeer) RemoteAddr() net.Addr     { return p.addr }

func (p *fakePeer) last() Msg {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.msgs) == 0 {
		return Msg{}
	}
	return p.msgs[len(p.msgs)-1]
}

// reserve sends p's RESERVE and returns the RESERVATION's status.
func (r *testRelay) reserve(t *testing.T, p *fakePeer) byte {
	t.Helper()
	r.svc.HandleMsg(p, Msg{Type: TypeReserve})
	m := p.last()
	if m.Type != TypeReservation {
		t.Fatalf("RESERVE answered with %+v", m)
	}
	return m.Status
}

func (r *testRelay) mustReserve(t *testing.T, p *fakePeer) {
	t.Helper()
	if st := r.reserve(t, p); st != StatusOK {
		t.Fatalf("RESERVE of %x refused with status %d", p.key[:2], st)
	}
}

// token waits for the next INCOMING p receives.
func (p *fakePeer) token(t *testing.T) [TokenSize]byte {
	t.Helper()
	select {
	case tok := <-p.incoming:
		return tok
	case <-time.After(5 * time.Second):
		t.Fatal("no INCOMING")
		return [TokenSize]byte{}
	}
}

// noIncoming checks that p was sent no INCOMING.
func (p *fakePeer) noIncoming(t *testing.T) {
	t.Helper()
	select {
	case <-p.incoming:
		t.Fatal("an INCOMING was sent")
	default:
	}
}

func ctx5(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// pair splices a client to target p (which holds a reservation) and
// returns the client's and the target's connections.
func (r *testRelay) pair(t *testing.T, p *fakePeer) (client, target net.Conn) {
	t.Helper()
	client = r.dial(t)
	errc := make(chan error, 1)
	go func() { errc <- Dial(ctx5(t), client, r.svc.cfg.Network, p.key) }()
	tok := p.token(t)
	target = r.dial(t)
	if err := Accept(ctx5(t), target, r.svc.cfg.Network, tok); err != nil {
		t.Fatalf("Accept: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Dial: %v", err)
	}
	return client, target
}

// checkFlow sends a short message each way between a and b.
func checkFlow(t *testing.T, a, b net.Conn) {
	t.Helper()
	for _, d := range [][2]net.Conn{{a, b}, {b, a}} {
		msg := []byte("hello through the relay")
		if _, err := d[0].Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		_ = d[1].SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(d[1], got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("read %q (%v), want %q", got, err, msg)
		}
		_ = d[1].SetReadDeadline(time.Time{})
	}
}

// checkWorks checks that a fresh target/client pair still splices.
func (r *testRelay) checkWorks(t *testing.T, id byte) {
	t.Helper()
	p := newPeer(id, "192.0.2.200")
	r.mustReserve(t, p)
	c, tg := r.pair(t, p)
	checkFlow(t, c, tg)
	c.Close()
	tg.Close()
}

// expectEOF reads from c until EOF (or a reset), which must come within 5 s, and
// returns the bytes read.
func expectEOF(t *testing.T, c net.Conn) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, net.ErrClosed) && !notTimeout(err) {
		t.Fatalf("read until EOF: %v", err)
	}
	return b
}

func notTimeout(err error) bool {
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// eventually polls cond for up to 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 500 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("not after 5 s: %s", what)
}

func TestSplice(t *testing.T) {
	r := newRelay(t, Config{})
	p := newPeer(1, "192.0.2.1")
	r.mustReserve(t, p)
	if m := p.last(); m.Lifetime != DefaultLifetime {
		t.Fatalf("RESERVATION lifetime %v, want %v", m.Lifetime, DefaultLifetime)
	}
	if !r.svc.Reserved(p.key) {
		t.Fatal("Reserved false after RESERVE")
	}
	client, target := r.pair(t, p)

	const n = 1 << 20
	up, down := make([]byte, n), make([]byte, n)
	rand.Read(up)
	rand.Read(down)
	var wg sync.WaitGroup
	var gotUp, gotDown []byte
	var errUp, errDown error
	wg.Go(func() { _, errUp = client.Write(up) })
	wg.Go(func() { _, errDown = target.Write(down) })
	wg.Go(func() { gotUp = make([]byte, n); _, errUp2 := io.ReadFull(target, gotUp); _ = errUp2 })
	gotDown = make([]byte, n)
	_ = client.SetReadDeadline(time.Now().Add(10 * time.Second))
	_ = target.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.ReadFull(client, gotDown)
	wg.Wait()
	if err != nil || errUp != nil || errDown != nil {
		t.Fatalf("transfer: %v %v %v", err, errUp, errDown)
	}
	if !bytes.Equal(gotUp, up) || !bytes.Equal(gotDown, down) {
		t.Fatal("bytes differ after the splice")
	}
	eventually(t, "Stats.Bytes counts 2 MiB", func() bool { return r.svc.Stats().Bytes == 2*n })
	st := r.svc.Stats()
	if st.Spliced != 1 || st.Splices != 1 || st.Reservations != 1 || st.Reserved != 1 || st.Pending != 0 || st.Refused != 0 {
		t.Fatalf("stats %+v", st)
	}

	// Closing one end closes the other.
	client.Close()
	if b := expectEOF(t, target); len(b) != 0 {
		t.Fatalf("%d stray bytes", len(b))
	}
	eventually(t, "the splice is gone", func() bool { return r.svc.Stats().Splices == 0 })

	// And the other way round.
	client, target = r.pair(t, p)
	checkFlow(t, client, target)
	target.Close()
	expectEOF(t, client)
	eventually(t, "the splice is gone", func() bool { return r.svc.Stats().Splices == 0 })
	if st := r.svc.Stats(); st.Spliced != 2 || st.Reservations != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRefused(t *testing.T) {
	r := newRelay(t, Config{})
	p := newPeer(1, "192.0.2.1")
	r.mustReserve(t, p)
	netw := link.DefaultNetwork

	// CONNECT for a key without a reservation.
	c := r.dial(t)
	err := Dial(ctx5(t), c, netw, keys.LinkPublicKey{9})
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("Dial to an unreserved key: %v", err)
	}
	if st, _ := r.raw(t, connectHeader(netw, keys.LinkPublicKey{9})); st != StatusNoReservation {
		t.Fatalf("unreserved key: status %d", st)
	}
	// Another network.
	if st, _ := r.raw(t, connectHeader("othernet", p.key)); st != StatusProtocol {
		t.Fatalf("another network: status %d", st)
	}
	if err := Dial(ctx5(t), r.dial(t), "othernet", p.key); !errors.Is(err, ErrRefused) {
		t.Fatalf("Dial on another network: %v", err)
	}
	p.noIncoming(t)

	good := connectHeader(netw, p.key)
	mutate := func(f func(b []byte)) []byte {
		b := bytes.Clone(good)
		f(b)
		return b
	}
	acc := acceptHeader(netw, [TokenSize]byte{1})
	for _, tc := range []struct {
		name string
		hdr  []byte
	}{
		{"bad magic", mutate(func(b []byte) { b[0] = 'X' })},
		{"bad version", mutate(func(b []byte) { b[3] = 2 })},
		{"unknown kind", mutate(func(b []byte) { b[12] = 3 })},
		{"kind 0", mutate(func(b []byte) { b[12] = 0 })},
		{"ACCEPT padding", func() []byte { b := bytes.Clone(acc); b[HeaderSize-1] = 1; return b }()},
	} {
		st, _ := r.raw(t, tc.hdr)
		if st != StatusProtocol {
			t.Errorf("%s: status %d, want %d", tc.name, st, StatusProtocol)
		}
	}
	// A short header, then the client closes its side.
	c = r.dial(t)
	if _, err := c.Write(good[:20]); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	if b := expectEOF(t, c); len(b) > 1 || (len(b) == 1 && b[0] != StatusProtocol) {
		t.Fatalf("short header answered with %x", b)
	}
	p.noIncoming(t)
	if st := r.svc.Stats(); st.Refused < 9 || st.Pending != 0 {
		t.Fatalf("stats %+v", st)
	}
	// The relay still serves.
	client, target := r.pair(t, p)
	checkFlow(t, client, target)
}

func TestAcceptTimeout(t *testing.T) {
	r := newRelay(t, Config{AcceptTimeout: 200 * time.Millisecond})
	p := newPeer(1, "192.0.2.1")
	r.mustReserve(t, p)
	start := time.Now()
	st, _ := r.raw(t, connectHeader(link.DefaultNetwork, p.key))
	if st != StatusTimeout {
		t.Fatalf("status %d, want %d (timeout)", st, StatusTimeout)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("timed out after %v, before AcceptTimeout", d)
	}
	tok := p.token(t)
	if st := r.svc.Stats(); st.Pending != 0 {
		t.Fatalf("stats %+v", st)
	}
	// The target answers too late: its token is gone.
	if st, _ := r.raw(t, acceptHeader(link.DefaultNetwork, tok)); st != StatusNoReservation {
		t.Fatalf("late ACCEPT: status %d", st)
	}
	// Dial reports it too.
	err := Dial(ctx5(t), r.dial(t), link.DefaultNetwork, p.key)
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("Dial: %v", err)
	}
	p.token(t)
	r.checkWorks(t, 50)
}

func TestAcceptToken(t *testing.T) {
	r := newRelay(t, Config{})
	p := newPeer(1, "192.0.2.1")
	r.mustReserve(t, p)
	var unknown [TokenSize]byte
	rand.Read(unknown[:])
	if st, _ := r.raw(t, acceptHeader(link.DefaultNetwork, unknown)); st != StatusNoReservation {
		t.Fatalf("unknown token: status %d", st)
	}
	if err := Accept(ctx5(t), r.dial(t), link.DefaultNetwork, unknown); !errors.Is(err, ErrRefused) {
		t.Fatalf("Accept of an unknown token: %v", err)
	}

	// A token is good once.
	client := r.dial(t)
	errc := make(chan error, 1)
	go func() { errc <- Dial(ctx5(t), client, link.DefaultNetwork, p.key) }()
	tok := p.token(t)
	target := r.dial(t)
	if err := Accept(ctx5(t), target, link.DefaultNetwork, tok); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if st, _ := r.raw(t, acceptHeader(link.DefaultNetwork, tok)); st != StatusNoReservation {
		t.Fatalf("second ACCEPT with a token: status %d", st)
	}
	checkFlow(t, client, target)
	// An ACCEPT of another network with a good token is refused, and the
	// token stays good.
	go func() { errc <- Dial(ctx5(t), r.dial(t), link.DefaultNetwork, p.key) }()
	tok = p.token(t)
	if st, _ := r.raw(t, acceptHeader("othernet", tok)); st != StatusProtocol {
		t.Fatalf("ACCEPT of another network: status %d", st)
	}
	if err := Accept(ctx5(t), r.dial(t), link.DefaultNetwork, tok); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestMaxReservationsPerIP(t *testing.T) {
	r := newRelay(t, Config{MaxReservationsPerIP: 2})
	a, b, c := newPeer(1, "198.51.100.7"), newPeer(2, "198.51.100.7"), newPeer(3, "198.51.100.7")
	r.mustReserve(t, a)
	r.mustReserve(t, b)
	if st := r.reserve(t, c); st != StatusResource {
		t.Fatalf("third reservation from one address: status %d", st)
	}
	// A renewal is not a new reservation.
	r.mustReserve(t, a)
	r.mustReserve(t, a)
	if st := r.reserve(t, c); st != StatusResource {
		t.Fatalf("third reservation after renewals: status %d", st)
	}
	// IPv6 counts per /64.
	v6a, v6b, v6c := newPeer(4, "2001:db8::1"), newPeer(5, "2001:db8::2:3"), newPeer(6, "2001:db8::ffff")
	r.mustReserve(t, v6a)
	r.mustReserve(t, v6b)
	if st := r.reserve(t, v6c); st != StatusResource {
		t.Fatalf("third reservation from one /64: status %d", st)
	}
	r.mustReserve(t, newPeer(7, "2001:db8:0:1::1"))
	// Another address is not limited.
	r.mustReserve(t, newPeer(8, "198.51.100.8"))
	if st := r.svc.Stats(); st.Reservations != 6 || st.Refused != 3 {
		t.Fatalf("stats %+v", st)
	}
	// A renewal from another address moves the reservation.
	a2 := newPeer(1, "198.51.100.9")
	r.mustReserve(t, a2)
	r.mustReserve(t, c)
	// The reservations still work.
	client, target := r.pair(t, a2)
	checkFlow(t, client, target)
	r.checkWorks(t, 50)
}

func TestMaxReservations(t *testing.T) {
	r := newRelay(t, Config{MaxReservations: 2})
	a, b, c := newPeer(1, "192.0.2.1"), newPeer(2, "192.0.2.2"), newPeer(3, "192.0.2.3")
	r.mustReserve(t, a)
	r.mustReserve(t, b)
	if st := r.reserve(t, c); st != StatusResource {
		t.Fatalf("reservation beyond MaxReservations: status %d", st)
	}
	r.mustReserve(t, b) // renewal
	client, target := r.pair(t, a)
	checkFlow(t, client, target)
	r.svc.PeerClosed(b)
	r.mustReserve(t, c)
	client, target = r.pair(t, c)
	checkFlow(t, client, target)
}

func TestPeerClosed(t *testing.T) {
	r := newRelay(t, Config{MaxReservationsPerIP: 1})
	p := newPeer(1, "192.0.2.1")
	r.mustReserve(t, p)
	client, target := r.pair(t, p)
	r.svc.PeerClosed(p)
	if r.svc.Reserved(p.key) {
		t.Fatal("reserved after PeerClosed")
	}
	if st, _ := r.raw(t, connectHeader(link.DefaultNetwork, p.key)); st != StatusNoReservation {
		t.Fatalf("CONNECT after PeerClosed: status %d", st)
	}
	// The splice made before goes on.
	checkFlow(t, client, target)
	// The source's slot is free again.
	r.mustReserve(t, newPeer(2, "192.0.2.1"))

	// A reservation renewed over a newer link outlives the older link.
	q1, q2 := newPeer(3, "192.0.2.3"), newPeer(3, "192.0.2.3")
	r.mustReserve(t, q1)
	r.mustReserve(t, q2)
	r.svc.PeerClosed(q1)
	if !r.svc.Reserved(q2.key) {
		t.Fatal("the older link's close ended the newer link's reservation")
	}
	client, target = r.pair(t, q2)
	checkFlow(t, client, target)
	q1.noIncoming(t)
}

func TestLifetime(t *testing.T) {
	r := newRelay(t, Config{Lifetime: 300 * time.Millisecond, MaxReservationsPerIP: 1})
	p := newPeer(1, "192.0.2.1")
	r.mustReserve(t, p)
	if !r.svc.Reserved(p.key) {
		t.Fatal("not reserved")
	}
	if st := r.reserve(t, newPeer(2, "192.0.2.1")); st != StatusResource {
		t.Fatalf("second reservation of the address: status %d", st)
	}
	time.Sleep(400 * time.Millisecond)
	if r.svc.Reserved(p.key) {
		t.Fatal("reserved after Lifetime")
	}
	if st, _ := r.raw(t, connectHeader(link.DefaultNetwork, p.key)); st != StatusNoReservation {
		t.Fatalf("CONNECT after Lifetime: status %d", st)
	}
	if st := r.svc.Stats(); st.Reservations != 0 {
		t.Fatalf("stats %+v", st)
	}
	// The expired reservation's address may reserve again.
	r.mustReserve(t, newPeer(2, "192.0.2.1"))
	// A renewal extends the lifetime.
	q := newPeer(3, "192.0.2.3")
	r.mustReserve(t, q)
	for range 4 {
		time.Sleep(100 * time.Millisecond)
		r.mustReserve(t, q)
	}
	if !r.svc.Reserved(q.key) {
		t.Fatal("a renewed reservation expired")
	}
}

// hold opens CONNECTs to p that the test never answers; it waits until the
// relay holds them all pending.
func (r *testRelay) hold(t *testing.T, p *fakePeer, n int) {
	t.Helper()
	before := r.svc.Stats().Pending
	for range n {
		c := r.dial(t)
		if _, err := c.Write(connectHeader(link.DefaultNetwork, p.key)); err != nil {
			t.Fatal(err)
		}
		p.token(t)
	}
	eventually(t, "CONNECTs pending", func() bool { return r.svc.Stats().Pending == before+n })
}

func TestMaxPending(t *testing.T) {
	r := newRelay(t, Config{MaxPendingPerTarget: 2, MaxPending: 3, AcceptTimeout: 3 * time.Second})
	a, b, c := newPeer(1, "192.0.2.1"), newPeer(2, "192.0.2.2"), newPeer(3, "192.0.2.3")
	for _, p := range []*fakePeer{a, b, c} {
		r.mustReserve(t, p)
	}
	r.hold(t, a, 2)
	if st, _ := r.raw(t, connectHeader(link.DefaultNetwork, a.key)); st != StatusResource {
		t.Fatalf("CONNECT beyond MaxPendingPerTarget: status %d", st)
	}
	a.noIncoming(t)
	// Another target still works.
	client, target := r.pair(t, b)
	checkFlow(t, client, target)
	// Beyond MaxPending in all.
	r.hold(t, b, 1)
	if st, _ := r.raw(t, connectHeader(link.DefaultNetwork, c.key)); st != StatusResource {
		t.Fatalf("CONNECT beyond MaxPending: status %d", st)
	}
	c.noIncoming(t)
	if st := r.svc.Stats(); st.Pending != 3 || st.Refused != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestConnectRate(t *testing.T) {
	r := newRelay(t, Config{ConnectRate: 0.001, ConnectBurst: 2})
	a, b := newPeer(1, "192.0.2.1"), newPeer(2, "192.0.2.2")
	r.mustReserve(t, a)
	r.mustReserve(t, b)
	for range 2 {
		client, target := r.pair(t, a)
		checkFlow(t, client, target)
	}
	if st, _ := r.raw(t, connectHeader(link.DefaultNetwork, a.key)); st != StatusResource {
		t.Fatalf("CONNECT beyond the burst: status %d", st)
	}
	a.noIncoming(t)
	// The rate is per reservation.
	client, target := r.pair(t, b)
	checkFlow(t, client, target)
}

func TestMaxSplicesPerTarget(t *testing.T) {
	r := newRelay(t, Config{MaxSplicesPerTarget: 1})
	a, b := newPeer(1, "192.0.2.1"), newPeer(2, "192.0.2.2")
	r.mustReserve(t, a)
	r.mustReserve(t, b)
	client, target := r.pair(t, a)
	if st, _ := r.raw(t, connectHeader(link.DefaultNetwork, a.key)); st != StatusResource {
		t.Fatalf("second splice to a target: status %d", st)
	}
	a.noIncoming(t)
	c2, t2 := r.pair(t, b)
	checkFlow(t, c2, t2)
	checkFlow(t, client, target)
	client.Close()
	expectEOF(t, target)
	eventually(t, "the splice is gone", func() bool { return r.svc.Stats().Splices == 1 })
	client, target = r.pair(t, a)
	checkFlow(t, client, target)
}

// TestMaxSplicesPerTargetPending: CONNECTs that pass the check together
// while none is spliced yet still make at most MaxSplicesPerTarget splices.
func TestMaxSplicesPerTargetPending(t *testing.T) {
	r := newRelay(t, Config{MaxSplicesPerTarget: 1})
	a := newPeer(1, "192.0.2.1")
	r.mustReserve(t, a)
	var clients [2]net.Conn
	for i := range clients {
		clients[i] = r.dial(t)
		if _, err := clients[i].Write(connectHeader(link.DefaultNetwork, a.key)); err != nil {
			t.Fatal(err)
		}
	}
	toks := [2][TokenSize]byte{a.token(t), a.token(t)}
	var accepted int
	for _, tok := range toks {
		if Accept(ctx5(t), r.dial(t), link.DefaultNetwork, tok) == nil {
			accepted++
		}
	}
	var ok int
	for _, c := range clients {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		var b [1]byte
		if _, err := io.ReadFull(c, b[:]); err == nil && b[0] == StatusOK {
			ok++
		}
	}
	if ok != 1 || accepted != 1 {
		t.Fatalf("%d clients and %d targets spliced, want 1 with MaxSplicesPerTarget 1", ok, accepted)
	}
	if st := r.svc.Stats(); st.Splices != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestMaxSplices(t *testing.T) {
	r := newRelay(t, Config{MaxSplices: 1})
	a, b := newPeer(1, "192.0.2.1"), newPeer(2, "192.0.2.2")
	r.mustReserve(t, a)
	r.mustReserve(t, b)
	client, target := r.pair(t, a)
	if st, _ := r.raw(t, connectHeader(link.DefaultNetwork, b.key)); st != StatusResource {
		t.Fatalf("splice beyond MaxSplices: status %d", st)
	}
	b.noIncoming(t)
	target.Close()
	expectEOF(t, client)
	eventually(t, "the splice is gone", func() bool { return r.svc.Stats().Splices == 0 })
	client, target = r.pair(t, b)
	checkFlow(t, client, target)
}

func TestMaxSpliceBytes(t *testing.T) {
	const limit = 1000
	r := newRelay(t, Config{MaxSpliceBytes: limit})
	p := newPeer(1, "192.0.2.1")
	r.mustReserve(t, p)
	client, target := r.pair(t, p)
	msg := make([]byte, 5*limit)
	rand.Read(msg)
	go func() { _, _ = client.Write(msg) }() // fails once the relay closes
	got := expectEOF(t, target)
	if !bytes.Equal(got, msg[:limit]) {
		t.Fatalf("target read %d bytes, want the first %d", len(got), limit)
	}
	expectEOF(t, client)
	eventually(t, "the splice is gone", func() bool { return r.svc.Stats().Splices == 0 })
	r.checkWorks(t, 50)
}

func TestMaxSpliceDuration(t *testing.T) {
	r := newRelay(t, Config{MaxSpliceDuration: 300 * time.Millisecond})
	p := newPeer(1, "192.0.2.1")
	r.mustReserve(t, p)
	start := time.Now()
	client, target := r.pair(t, p)
	checkFlow(t, client, target)
	expectEOF(t, target)
	expectEOF(t, client)
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("splice ended after %v", d)
	}
}

func TestDialTarget(t *testing.T) {
	r := newRelay(t, Config{})
	p := newPeer(1, "192.0.2.1")
	r.mustReserve(t, p)
	type res struct {
		c   net.Conn
		err error
	}
	rc := make(chan res, 1)
	go func() {
		c, err := r.svc.DialTarget(ctx5(t), p.key)
		rc <- res{c, err}
	}()
	tok := p.token(t)
	target := r.dial(t)
	if err := Accept(ctx5(t), target, link.DefaultNetwork, tok); err != nil {
		t.Fatalf("Accept: %v", err)
	}
	got := <-rc
	if got.err != nil {
		t.Fatalf("DialTarget: %v", got.err)
	}
	relaySide := got.c
	const n = 256 << 10
	up, down := make([]byte, n), make([]byte, n)
	rand.Read(up)
	rand.Read(down)
	go func() { _, _ = relaySide.Write(down) }()
	go func() { _, _ = target.Write(up) }()
	gotDown, gotUp := make([]byte, n), make([]byte, n)
	_ = target.SetReadDeadline(time.Now().Add(5 * time.Second))
	_ = relaySide.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(target, gotDown); err != nil || !bytes.Equal(gotDown, down) {
		t.Fatalf("relay to target: %v", err)
	}
	if _, err := io.ReadFull(relaySide, gotUp); err != nil || !bytes.Equal(gotUp, up) {
		t.Fatalf("target to relay: %v", err)
	}
	relaySide.Close()
	expectEOF(t, target)

	// No reservation.
	if _, err := r.svc.DialTarget(ctx5(t), keys.LinkPublicKey{9}); !errors.Is(err, ErrRefused) {
		t.Fatalf("DialTarget without a reservation: %v", err)
	}
}

func TestClose(t *testing.T) {
	r := newRelay(t, Config{AcceptTimeout: 5 * time.Second})
	a, b := newPeer(1, "192.0.2.1"), newPeer(2, "192.0.2.2")
	r.mustReserve(t, a)
	r.mustReserve(t, b)
	client, target := r.pair(t, a)
	checkFlow(t, client, target)
	waiting := r.dial(t)
	if _, err := waiting.Write(connectHeader(link.DefaultNetwork, b.key)); err != nil {
		t.Fatal(err)
	}
	b.token(t)
	eventually(t, "a CONNECT pending", func() bool { return r.svc.Stats().Pending == 1 })

	start := time.Now()
	r.svc.Close()
	expectEOF(t, target)
	expectEOF(t, client)
	if b := expectEOF(t, waiting); len(b) != 1 || b[0] != StatusTimeout {
		t.Fatalf("pending CONNECT answered %x at Close", b)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v to end the splice and the wait", d)
	}
	eventually(t, "nothing held", func() bool {
		st := r.svc.Stats()
		return st.Splices == 0 && st.Pending == 0 && st.Reservations == 0
	})
	if st := r.reserve(t, a); st != StatusNoService {
		t.Fatalf("RESERVE after Close: status %d", st)
	}
	if st, _ := r.raw(t, connectHeader(link.DefaultNetwork, a.key)); st != StatusNoService {
		t.Fatalf("CONNECT after Close: status %d", st)
	}
	if _, err := r.svc.DialTarget(ctx5(t), a.key); !errors.Is(err, ErrRefused) {
		t.Fatalf("DialTarget after Close: %v", err)
	}
}

// TestDialContext: Dial gives up when its context ends.
func TestDialContext(t *testing.T) {
	r := newRelay(t, Config{})
	p := newPeer(1, "192.0.2.1")
	r.mustReserve(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := Dial(ctx, r.dial(t), link.DefaultNetwork, p.key)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial with an ending context: %v", err)
	}
}

// TestDialTargetContext: DialTarget gives up its wait when its context
// ends, and a late ACCEPT is refused.
func TestDialTargetContext(t *testing.T) {
	r := newRelay(t, Config{AcceptTimeout: 5 * time.Second})
	p := newPeer(1, "192.0.2.1")
	r.mustReserve(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := r.svc.DialTarget(ctx, p.key)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("DialTarget with an ending context: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("DialTarget returned %v after its context ended", d)
	}
	if st := r.svc.Stats(); st.Pending != 0 {
		t.Fatalf("stats %+v", st)
	}
	tok := p.token(t)
	if err := Accept(ctx5(t), r.dial(t), link.DefaultNetwork, tok); !errors.Is(err, ErrRefused) {
		t.Fatalf("late Accept: %v", err)
	}
	r.checkWorks(t, 50)
}
