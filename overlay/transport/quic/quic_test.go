package quictr

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

func udp(t testing.TB, addr string) *net.UDPConn {
	t.Helper()
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

func shared(t testing.TB, cfg Config) (*Transport, *net.UDPConn) {
	t.Helper()
	pc := udp(t, "127.0.0.1:0")
	tr, err := New(pc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr, pc
}

func listen(t testing.TB, tr *Transport) net.Listener {
	t.Helper()
	ln, err := tr.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// pair dials ln from tr and returns both ends, closed at cleanup.
func pair(t testing.TB, tr *Transport, ln net.Listener) (client, server net.Conn) {
	t.Helper()
	client, err := tr.Dial(context.Background(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}

// ping writes msg on a and reads it back on b.
func ping(t testing.TB, a, b net.Conn, msg string) {
	t.Helper()
	if _, err := a.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(b, got); err != nil || string(got) != msg {
		t.Fatalf("read %q, %v; want %q", got, err, msg)
	}
}

// stunRequest is a STUN binding request header: type 0x0001, length 0,
// the magic cookie, a transaction ID.
var stunRequest = []byte{0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}

func TestNonQUICPacketsShareTheSocket(t *testing.T) {
	tr, pc := shared(t, Config{})
	ln := listen(t, tr)
	c, s := pair(t, &Transport{}, ln)
	ping(t, c, s, "before")

	raw := udp(t, "127.0.0.1:0")
	if _, err := raw.WriteTo(stunRequest, pc.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	p := tr.PacketConn()
	defer p.Close()
	buf := make([]byte, 1500)
	n, from, err := p.ReadFrom(buf)
	if err != nil || !bytes.Equal(buf[:n], stunRequest) || from.String() != raw.LocalAddr().String() {
		t.Fatalf("ReadFrom: %x from %v, %v", buf[:n], from, err)
	}
	if _, err := p.WriteTo([]byte{0x01, 0x01, 0, 0}, from); err != nil {
		t.Fatal(err)
	}
	n, _, err = raw.ReadFrom(buf)
	if err != nil || !bytes.Equal(buf[:n], []byte{0x01, 0x01, 0, 0}) {
		t.Fatalf("raw read %x, %v", buf[:n], err)
	}
	ping(t, s, c, "after")
	ping(t, c, s, "and back")
}

func TestPacketConnDeadlineAndClose(t *testing.T) {
	tr, _ := shared(t, Config{})
	p := tr.PacketConn()
	p.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	_, _, err := p.ReadFrom(make([]byte, 10))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("read past deadline: %v", err)
	}
	p.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() { _, _, err := p.ReadFrom(make([]byte, 10)); done <- err }()
	p.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Errorf("read after Close: %v", err)
	}
	if (&Transport{}).PacketConn() != nil {
		t.Error("PacketConn on a zero Transport")
	}
	if _, _, err := (&Transport{}).ReadNonQUIC(context.Background(), nil); !errors.Is(err, ErrNoSocket) {
		t.Errorf("ReadNonQUIC on a zero Transport: %v", err)
	}
}

func TestDialBothWaysOnSharedSockets(t *testing.T) {
	a, pa := shared(t, Config{})
	b, pb := shared(t, Config{})
	la, lb := listen(t, a), listen(t, b)
	type res struct {
		c   net.Conn
		err error
	}
	ab, ba := make(chan res, 1), make(chan res, 1)
	go func() { c, err := a.Dial(context.Background(), lb.Addr().String()); ab <- res{c, err} }()
	go func() { c, err := b.Dial(context.Background(), la.Addr().String()); ba <- res{c, err} }()
	rab, rba := <-ab, <-ba
	if rab.err != nil || rba.err != nil {
		t.Fatal(rab.err, rba.err)
	}
	defer rab.c.Close()
	defer rba.c.Close()
	sa, err := la.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close()
	sb, err := lb.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	// Each dial left from its own listening socket: that is what makes a
	// punched mapping usable.
	if rab.c.LocalAddr().String() != pa.LocalAddr().String() || sb.RemoteAddr().String() != pa.LocalAddr().String() {
		t.Errorf("A->B from %v (seen as %v), A's socket %v", rab.c.LocalAddr(), sb.RemoteAddr(), pa.LocalAddr())
	}
	if rba.c.LocalAddr().String() != pb.LocalAddr().String() {
		t.Errorf("B->A from %v, B's socket %v", rba.c.LocalAddr(), pb.LocalAddr())
	}
	ping(t, rab.c, sb, "a to b")
	ping(t, sb, rab.c, "b to a")
	ping(t, rba.c, sa, "b dials a")
	ping(t, sa, rba.c, "a answers")
}

func TestSharedListen(t *testing.T) {
	tr, pc := shared(t, Config{})
	if _, err := tr.Listen("127.0.0.1:1"); !errors.Is(err, ErrPortMismatch) {
		t.Errorf("listen on another port: %v", err)
	}
	ln, err := tr.Listen(pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Listen(":0"); !errors.Is(err, ErrListening) {
		t.Errorf("second listener: %v", err)
	}
	ln.Close()
	ln, err = tr.Listen(":0")
	if err != nil {
		t.Fatalf("listen after close: %v", err)
	}
	ln.Close()
	tr.Close()
	if _, err := tr.Dial(context.Background(), "127.0.0.1:1"); !errors.Is(err, net.ErrClosed) {
		t.Errorf("dial after Close: %v", err)
	}
	if _, _, err := tr.ReadNonQUIC(context.Background(), make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("ReadNonQUIC after Close: %v", err)
	}
}

// rawDial opens a QUIC connection with quic-go directly, from src: a peer
// that speaks QUIC and the ALPN but need not follow the link protocol.
func rawDial(t *testing.T, qt *quic.Transport, to net.Addr) (*quic.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return qt.Dial(ctx, to, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{ALPN}}, &quic.Config{})
}

func TestHostilePeerIsBounded(t *testing.T) {
	cfg := Config{Backlog: 8, BacklogPerHost: 2}
	srv := &Transport{Config: cfg}
	ln := listen(t, srv)
	l := ln.(*listener)

	// The attacker, from another loopback address, opens connections and
	// never a stream: only BacklogPerHost get in.
	attacker := &quic.Transport{Conn: udp(t, "127.0.0.2:0")}
	defer attacker.Close()
	var held []*quic.Conn
	for range 6 {
		qc, err := rawDial(t, attacker, ln.Addr())
		if err == nil {
			held = append(held, qc)
		}
		l.mu.Lock()
		pending := l.pending
		l.mu.Unlock()
		if pending > cfg.BacklogPerHost {
			t.Fatalf("listener holds %d connections from one host, bound %d", pending, cfg.BacklogPerHost)
		}
	}
	if len(held) != cfg.BacklogPerHost {
		t.Errorf("attacker got %d connections in, want %d", len(held), cfg.BacklogPerHost)
	}

	// A legitimate dial still works.
	c, s := pair(t, &Transport{}, ln)
	ping(t, c, s, "still here")

	// A link peer cannot open a second stream beside its link.
	link, err := rawDial(t, attacker, ln.Addr())
	if err == nil {
		t.Errorf("a third connection from the attacker got in")
		link.CloseWithError(0, "")
	}
	for _, qc := range held {
		qc.CloseWithError(0, "")
	}
}

func TestOneStreamPerLink(t *testing.T) {
	ln := listen(t, &Transport{})
	qt := &quic.Transport{Conn: udp(t, "127.0.0.1:0")}
	defer qt.Close()
	qc, err := rawDial(t, qt, ln.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer qc.CloseWithError(0, "")
	st, err := qc.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	st.Write([]byte{preamble, 'h', 'i'})
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var limit *quic.StreamLimitReachedError
	if _, err := qc.OpenStream(); !errors.As(err, &limit) {
		t.Errorf("second stream: %v, want the stream limit", err)
	}
	got := make([]byte, 2)
	if _, err := io.ReadFull(s, got); err != nil || string(got) != "hi" {
		t.Errorf("read %q, %v", got, err)
	}
}

func TestBadPreambleIsRefused(t *testing.T) {
	ln := listen(t, &Transport{})
	qt := &quic.Transport{Conn: udp(t, "127.0.0.1:0")}
	defer qt.Close()
	qc, err := rawDial(t, qt, ln.Addr())
	if err != nil {
		t.Fatal(err)
	}
	st, _ := qc.OpenStream()
	st.Write([]byte("GET / HTTP/1.1\r\n"))
	<-qc.Context().Done() // the listener closes it
	var ae *quic.ApplicationError
	if err := context.Cause(qc.Context()); !errors.As(err, &ae) || ae.ErrorCode != codeRefused {
		t.Errorf("connection ended with %v, want refused", err)
	}
	c, s := pair(t, &Transport{}, ln)
	ping(t, c, s, "ok")
}
