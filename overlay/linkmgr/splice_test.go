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
