package link

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/transport"
	"github.com/darkmatter/darkmatter/overlay/transport/memnet"
	"github.com/flynn/noise"
)

// ioTimeout bounds every blocking step of a test.
const ioTimeout = 30 * time.Second

// testHandler is a Handler for tests.
type testHandler struct {
	// onCell, when set, receives the cells; otherwise they are freed.
	onCell  func(*Link, *cell.Cell)
	closedN atomic.Int32
	closed  chan error // the first Closed error
}

func newHandler(onCell func(*Link, *cell.Cell)) *testHandler {
	return &testHandler{onCell: onCell, closed: make(chan error, 1)}
}

func (h *testHandler) HandleCell(l *Link, c *cell.Cell) {
	if h.onCell != nil {
		h.onCell(l, c)
		return
	}
	c.Free()
}

func (h *testHandler) Closed(l *Link, err error) {
	if h.closedN.Add(1) == 1 {
		h.closed <- err
	}
}

// waitClosed waits for Closed and returns its error.
func (h *testHandler) waitClosed(t testing.TB) error {
	t.Helper()
	select {
	case err := <-h.closed:
		return err
	case <-time.After(ioTimeout):
		t.Fatal("Handler.Closed not called")
		return nil
	}
}

// network is a way to get conns: memnet or TCP loopback.
type network struct {
	name   string
	listen func(t testing.TB) (net.Listener, func(ctx context.Context) (net.Conn, error))
}

var networks = []network{
	{"memnet", func(t testing.TB) (net.Listener, func(context.Context) (net.Conn, error)) {
		n := &memnet.Network{}
		ln, err := n.Host("10.0.0.2").Listen(":7000")
		if err != nil {
			t.Fatal(err)
		}
		cli := n.Host("10.0.0.1")
		return ln, func(ctx context.Context) (net.Conn, error) { return cli.Dial(ctx, ln.Addr().String()) }
	}},
	{"tcp", func(t testing.TB) (net.Listener, func(context.Context) (net.Conn, error)) {
		// transport.TCP, as nodes use it (TCP_NODELAY, TCP_NOTSENT_LOWAT).
		var tr transport.TCP
		ln, err := tr.Listen("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return ln, func(ctx context.Context) (net.Conn, error) { return tr.Dial(ctx, ln.Addr().String()) }
	}},
}

func memnetListen(t testing.TB) (net.Listener, func(context.Context) (net.Conn, error)) {
	return networks[0].listen(t)
}

func newKey(t testing.TB) *keys.LinkPrivateKey {
	k, err := keys.GenerateLink(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// pair is both ends of one link.
type pair struct {
	cli, srv   *Link
	hcli, hsrv *testHandler
}

// newPair dials one link over a fresh listener. srvCfg needs a Static key.
// Both ends are closed at the end of the test.
func newPair(t testing.TB, listen func(testing.TB) (net.Listener, func(context.Context) (net.Conn, error)),
	cliCfg, srvCfg *Config, hcli, hsrv *testHandler) *pair {
	t.Helper()
	ln, dial := listen(t)
	defer ln.Close()
	p, err := dialPair(ln, dial, cliCfg, srvCfg, hcli, hsrv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.cli.Close()
		p.srv.Close()
	})
	return p
}

func dialPair(ln net.Listener, dial func(context.Context) (net.Conn, error), cliCfg, srvCfg *Config, hcli, hsrv *testHandler) (*pair, error) {
	if hcli == nil {
		hcli = newHandler(nil)
	}
	if hsrv == nil {
		hsrv = newHandler(nil)
	}
	cli, srv, cliErr, srvErr := dialBoth(ln, dial, cliCfg, srvCfg, srvCfg.Static.Public(), hcli, hsrv)
	if cliErr != nil || srvErr != nil {
		if cli != nil {
			cli.Close()
		}
		if srv != nil {
			srv.Close()
		}
		return nil, errors.Join(cliErr, srvErr)
	}
	return &pair{cli: cli, srv: srv, hcli: hcli, hsrv: hsrv}, nil
}

// dialBoth runs one Dial (to peer) against one Accept and returns both
// outcomes.
func dialBoth(ln net.Listener, dial func(context.Context) (net.Conn, error), cliCfg, srvCfg *Config,
	peer keys.LinkPublicKey, hcli, hsrv Handler) (cli, srv *Link, cliErr, srvErr error) {
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	type result struct {
		l   *Link
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			ch <- result{nil, err}
			return
		}
		l, err := Accept(ctx, c, srvCfg, hsrv)
		ch <- result{l, err}
	}()
	conn, err := dial(ctx)
	if err != nil {
		ln.Close()
		res := <-ch
		return nil, res.l, err, res.err
	}
	cli, cliErr = Dial(ctx, conn, cliCfg, peer, hcli)
	res := <-ch
	return cli, res.l, cliErr, res.err
}

// stream is a deterministic sequence of RELAY cells: cell i has circuit ID
// i+1 and a pseudo-random body. Sender and receiver both hash what they
// see.
type stream struct {
	rng *rand.ChaCha8
}

func newStream(seed byte) *stream {
	return &stream{rng: rand.NewChaCha8([32]byte{seed})}
}

// next returns cell i, and hashes its wire bytes into h.
func (s *stream) next(i int, h hash.Hash) *cell.Cell {
	c := cell.New(uint32(i+1), cell.CmdRelay)
	s.rng.Read(c.Body()[:cell.BodyLen])
	h.Write(c.Bytes())
	return c
}

// receiver counts and hashes the cells a link delivers, checks their
// order by circuit ID, and wakes a sender that waits for room.
type receiver struct {
	want   int
	got    atomic.Int64
	h      hash.Hash
	errMu  sync.Mutex
	err    string
	room   chan struct{} // cap 1: another batch of cells arrived
	doneCh chan struct{} // closed after want cells
}

func newReceiver(want int) *receiver {
	return &receiver{want: want, h: sha256.New(), room: make(chan struct{}, 1), doneCh: make(chan struct{})}
}

func (r *receiver) handle(l *Link, c *cell.Cell) {
	n := r.got.Load()
	if int(c.Circ()) != int(n)+1 {
		r.errMu.Lock()
		if r.err == "" {
			r.err = fmt.Sprintf("cell %d arrived as number %d", c.Circ(), n+1)
		}
		r.errMu.Unlock()
	}
	r.h.Write(c.Bytes())
	c.Free()
	n = r.got.Add(1)
	if n%64 == 0 {
		select {
		case r.room <- struct{}{}:
		default:
		}
	}
	if int(n) == r.want {
		close(r.doneCh)
	}
}

// sendWindow is how many cells a test sender keeps in flight.
const sendWindow = 2048

// sendStream sends n cells of s on l, keeping at most sendWindow cells in
// flight to r, and returns the SHA-256 of what it sent.
func sendStream(t testing.TB, l *Link, s *stream, n int, r *receiver) []byte {
	h := sha256.New()
	for i := range n {
		for i-int(r.got.Load()) > sendWindow {
			select {
			case <-r.room:
			case <-l.Done():
				t.Errorf("link closed after %d cells: %v", i, l.Err())
				return nil
			case <-time.After(ioTimeout):
				t.Errorf("receiver stuck after %d cells", i)
				return nil
			}
		}
		if err := l.Send(s.next(i, h)); err != nil {
			t.Errorf("Send %d: %v", i, err)
			return nil
		}
	}
	return h.Sum(nil)
}

// wait waits until all cells arrived and returns their hash.
func (r *receiver) wait(t testing.TB) []byte {
	t.Helper()
	select {
	case <-r.doneCh:
	case <-time.After(4 * ioTimeout):
		t.Fatalf("received %d of %d cells", r.got.Load(), r.want)
	}
	r.errMu.Lock()
	defer r.errMu.Unlock()
	if r.err != "" {
		t.Fatal(r.err)
	}
	return r.h.Sum(nil)
}

// rawFrame returns a frame header plus msg.
func rawFrame(msg []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(msg))), msg...)
}

// rogue is an initiator written directly against flynn/noise, independent
// of the package's own code, that can send anything after the handshake.
type rogue struct {
	conn       net.Conn
	send, recv *noise.CipherState
	peerHello  []byte // the responder's HELLO payload (all fields)
}

// rogueOpts says how a rogue initiator deviates from the protocol.
type rogueOpts struct {
	network string
	suite   byte   // 0 means ChaChaPoly (1)
	flags   byte   // preamble flags
	hello   []byte // our HELLO payload; nil means a protocols field with Link=1
}

// rogueDial runs the initiator side by hand over conn.
func rogueDial(t testing.TB, conn net.Conn, network string, peer keys.LinkPublicKey) *rogue {
	t.Helper()
	return rogueDialWith(t, conn, peer, rogueOpts{network: network})
}

// rogueHello is a HELLO payload built by hand: | type | length | value |
// per field, a protocols field "Link=1" first.
func rogueHello(extra ...[]byte) []byte {
	b := []byte{1, 0, 6, 1, 1, 0, 0, 0, 1} // protocols: one entry, Link = version 1
	for _, f := range extra {
		b = append(b, f...)
	}
	return b
}

func rogueDialWith(t testing.TB, conn net.Conn, peer keys.LinkPublicKey, o rogueOpts) *rogue {
	t.Helper()
	conn.SetDeadline(time.Now().Add(ioTimeout))
	defer conn.SetDeadline(time.Time{})
	if o.suite == 0 {
		o.suite = 1
	}
	if o.hello == nil {
		o.hello = rogueHello()
	}
	id := sha256.Sum256([]byte("darkmatter network\x00" + o.network))
	pre := append([]byte("DMK\x02"), id[:8]...)
	pre = append(pre, o.suite, o.flags)
	cipher := noise.CipherChaChaPoly
	if o.suite == 2 {
		cipher = noise.CipherAESGCM
	}
	static, _ := noise.DH25519.GenerateKeypair(nil)
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:   noise.NewCipherSuite(noise.DH25519, cipher, noise.HashBLAKE2s),
		Pattern:       noise.HandshakeIK,
		Initiator:     true,
		Prologue:      append([]byte("darkmatter link v2\x00"+o.network), pre...),
		StaticKeypair: static,
		PeerStatic:    peer[:],
	})
	if err != nil {
		t.Fatal(err)
	}
	msg1, _, _, err := hs.WriteMessage(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := append(pre, rawFrame(msg1)...)
	if _, err := conn.Write(out); err != nil {
		t.Fatal(err)
	}
	readFrame := func() []byte {
		var hdr [2]byte
		if _, err := io.ReadFull(conn, hdr[:]); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, binary.BigEndian.Uint16(hdr[:]))
		if _, err := io.ReadFull(conn, b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	_, cs1, cs2, err := hs.ReadMessage(nil, readFrame())
	if err != nil {
		t.Fatal(err)
	}
	r := &rogue{conn: conn, send: cs1, recv: cs2}
	pt, err := r.recv.Decrypt(nil, nil, readFrame())
	if err != nil || len(pt) != cell.Size || cell.Command(pt[4]) != cell.CmdHello {
		t.Fatalf("bad HELLO from responder: %v", err)
	}
	r.peerHello = pt[7 : 7+binary.BigEndian.Uint16(pt[5:])]
	hello := make([]byte, cell.Size)
	hello[4] = byte(cell.CmdHello)
	binary.BigEndian.PutUint16(hello[5:], uint16(len(o.hello)))
	copy(hello[7:], o.hello)
	r.writeMessage(t, hello)
	return r
}

// message encrypts plaintext as one transport message and returns its frame.
func (r *rogue) message(t testing.TB, plaintext []byte) []byte {
	t.Helper()
	msg, err := r.send.Encrypt(nil, nil, plaintext)
	if err != nil {
		t.Fatal(err)
	}
	return rawFrame(msg)
}

func (r *rogue) writeMessage(t testing.TB, plaintext []byte) {
	t.Helper()
	if _, err := r.conn.Write(r.message(t, plaintext)); err != nil {
		t.Fatal(err)
	}
}
