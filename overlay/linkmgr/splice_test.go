package linkmgr

import (
	"context"
	"io"
	"net"
	"testing"

	"github.com/darkmatter/darkmatter/overlay/transport"
	"github.com/darkmatter/darkmatter/overlay/transport/memnet"
)

// A relay with Config.Splice hands connections that open with SpliceMagic
// to it, holding their accept slot until it returns, and gives every other
// connection, its first bytes replayed, to the link handshake; a
// connection obtained elsewhere becomes a link through AcceptConn.
func TestSplice(t *testing.T) {
	var mn memnet.Network
	spliced := make(chan []byte, 1)
	release := make(chan struct{})
	r := newNode(t, &mn, "10.0.0.1", true, func(c *Config) {
		c.MaxLinksPerIP = 1
		c.Splice = func(conn net.Conn) {
			b := make([]byte, 5)
			_, err := io.ReadFull(conn, b)
			if err != nil {
				b = nil
			}
			spliced <- b
			<-release
		}
	})
	host := mn.Host("10.0.0.2")
	conn, err := host.Dial(ctxT(t), "10.0.0.1:7000")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("DMR01")); err != nil {
		t.Fatal(err)
	}
	if got := <-spliced; string(got) != "DMR01" {
		t.Fatalf("Splice read %q, want the magic replayed", got)
	}
	// The splice holds the address's only slot: a link from it is refused.
	c := newNode(t, &mn, "10.0.0.2", false)
	if _, err := c.dial(t, r); err == nil {
		t.Fatal("a link while the splice holds the address's slot")
	}
	close(release)
	// Slot back: an ordinary link, whose preamble went through the peek.
	waitFor(t, "the slot is given back", func() bool { return r.m.Stats().Inbound == 0 })
	if _, err := c.dial(t, r); err != nil {
		t.Fatalf("a link after the splice: %v", err)
	}

	// AcceptConn: a connection made elsewhere (over another memnet
	// listener here) carries a link the relay accepts without a slot.
	ln, err := mn.Host("10.0.0.9").Listen("10.0.0.9:9000")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	b, err := mn.Host("10.0.0.3").Dial(ctxT(t), "10.0.0.9:9000")
	if err != nil {
		t.Fatal(err)
	}
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	r.m.AcceptConn(a, transport.Addr{Scheme: "relay", HostPort: "192.0.2.1:7000"})
	d := newNode(t, &mn, "10.0.0.3", false, func(c *Config) {
		c.Transports = transport.Registry{"pipe": &pipeTransport{conn: b}}
	})
	if _, err := d.m.Dial(ctxT(t), r.keys.Identity.Public(), r.keys.Link.Public(), "pipe://192.0.2.1:7000"); err != nil {
		t.Fatalf("link over AcceptConn: %v", err)
	}
	waitFor(t, "the relay records the link", func() bool {
		for _, rl := range r.m.Links() {
			if rl.Addr().String() == "relay://192.0.2.1:7000" {
				return true
			}
		}
		return false
	})
}

// pipeTransport dials one prepared connection.
type pipeTransport struct{ conn net.Conn }

func (p *pipeTransport) Dial(ctx context.Context, addr string) (net.Conn, error) { return p.conn, nil }
func (p *pipeTransport) Listen(string) (net.Listener, error)                     { return nil, io.EOF }

// A move preamble with an unknown token or version is closed and counted;
// Link.Move with the link's token moves it, and the relay's side of the
// link then reports the new connection's address.
func TestMoveAccept(t *testing.T) {
	var mn memnet.Network
	r := newNode(t, &mn, "10.0.0.1", true)
	c := newNode(t, &mn, "10.0.0.2", false)
	l := c.channel(t, r)
	if !l.CanMove() {
		t.Fatal("the link cannot move")
	}
	host := mn.Host("10.0.0.2")
	tok := l.ll.Load().MoveToken()
	for _, bad := range [][]byte{
		append(append([]byte("DMV\x01"), make([]byte, 31)...), 1), // a token of no link
		append([]byte("DMV\x02"), tok[:]...),                      // another version
	} {
		conn, err := host.Dial(ctxT(t), "10.0.0.1:7000")
		if err != nil {
			t.Fatal(err)
		}
		conn.Write(bad)
		if !closedSoon(conn) {
			t.Fatalf("a move preamble %x was not refused", bad[:4])
		}
		conn.Close()
	}
	if st := r.m.Stats(); st.FailedHandshakes != 2 {
		t.Fatalf("failed handshakes %d, want 2", st.FailedHandshakes)
	}
	conn, err := mn.Host("10.0.0.3").Dial(ctxT(t), "10.0.0.1:7000")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Move(conn, transport.Addr{Scheme: "mem", HostPort: "10.0.0.1:7000"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the link moves", l.Moved)
	var rl *Link
	for _, x := range r.m.Links() {
		rl = x
	}
	if rl == nil || !rl.Moved() || rl.Addr().HostPort[:9] != "10.0.0.3:" {
		t.Fatalf("the relay's side of the link: %v", rl.Addr())
	}
}
