package linkmgr

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/overlay/link"
	"github.com/darkmatter/darkmatter/overlay/transport"
	"github.com/darkmatter/darkmatter/overlay/transport/memnet"
)

// Concurrent Channel calls for one relay share one dial and one link, and
// later calls reuse it.
func TestChannelDialsOnce(t *testing.T) {
	net := &memnet.Network{}
	r := newNode(t, net, "10.0.0.2", true)
	c := newNode(t, net, "10.0.0.1", false)
	var wg sync.WaitGroup
	links := make([]*Link, 8)
	for i := range links {
		wg.Go(func() { links[i] = c.channel(t, r) })
	}
	wg.Wait()
	for _, l := range links[1:] {
		if l != links[0] {
			t.Fatal("concurrent Channel calls got different links")
		}
	}
	if c.channel(t, r) != links[0] {
		t.Fatal("a later Channel call did not reuse the link")
	}
	if n := len(net.Dials()); n != 1 {
		t.Fatalf("%d dials, want 1", n)
	}
	waitFor(t, "the relay to record the link", func() bool { return r.m.Len() == 1 })
	if _, _, up, _, _ := c.rec.counts(); up != 1 {
		t.Errorf("LinkUp called %d times on the client", up)
	}
	if _, _, up, _, _ := r.rec.counts(); up != 1 {
		t.Errorf("LinkUp called %d times on the relay", up)
	}
	if d := links[0].Descriptor(); d == nil || d.Identity != r.keys.Identity.Public() {
		t.Error("the link does not carry the relay's verified descriptor")
	}
	if links[0].Addr().Scheme != memnet.Scheme {
		t.Errorf("link address %v", links[0].Addr())
	}
}

// Channel refuses a relay that is not the one asked for.
func TestChannelChecksIdentity(t *testing.T) {
	net := &memnet.Network{}
	r := newNode(t, net, "10.0.0.2", true)
	other := newNode(t, net, "10.0.0.3", true)
	c := newNode(t, net, "10.0.0.1", false)
	_, err := c.m.Channel(ctxT(t), other.keys.Identity.Public(), r.keys.Link.Public(), r.addr)
	if !errors.Is(err, ErrWrongRelay) {
		t.Fatalf("got %v, want ErrWrongRelay", err)
	}
}

// Several transports at once: a relay listens on memnet and on loopback
// TCP; a client reaches it over either, and a bare host:port means tcp.
func TestSeveralTransports(t *testing.T) {
	net := &memnet.Network{}
	tcpOpt := func(c *Config) { c.Transports[transport.SchemeTCP] = &transport.TCP{} }
	r := newNode(t, net, "10.0.0.2", true, tcpOpt)
	ln, err := r.m.Listen("tcp://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{r.addr, "tcp://" + ln.Addr().String(), ln.Addr().String()} {
		c := newNode(t, net, "10.0.0.1", false, tcpOpt)
		l, err := c.m.Channel(ctxT(t), r.keys.Identity.Public(), r.keys.Link.Public(), addr)
		if err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		want, _ := transport.ParseAddr(addr)
		if l.Addr() != want {
			t.Errorf("%s: link address %v", addr, l.Addr())
		}
		c.m.Close()
	}
	c := newNode(t, net, "10.0.0.1", false)
	if _, err := c.m.Channel(ctxT(t), r.keys.Identity.Public(), r.keys.Link.Public(), "quic://10.0.0.2:7000"); !errors.Is(err, transport.ErrUnknownScheme) {
		t.Errorf("dial of an unknown scheme: %v", err)
	}
	if !c.m.Supports(r.addr) || c.m.Supports("quic://10.0.0.2:7000") {
		t.Error("Supports is wrong")
	}
}

// Circuit cells go to the circuit layer, circuit 0 to the Handler.
func TestRoutesCells(t *testing.T) {
	net := &memnet.Network{}
	r := newNode(t, net, "10.0.0.2", true)
	c := newNode(t, net, "10.0.0.1", false)
	l := c.channel(t, r)
	for _, cl := range []*cell.Cell{cell.New(0, cell.CmdDirGet), cell.New(7, cell.CmdRelay), cell.New(0, cell.CmdDirDone)} {
		if err := l.Send(cl); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "cells to arrive", func() bool {
		circ, link, _, _, _ := r.rec.counts()
		return circ == 1 && link == 2
	})
	r.rec.mu.Lock()
	defer r.rec.mu.Unlock()
	if r.rec.circ[0] != 7 || r.rec.link[0] != cell.CmdDirGet || r.rec.link[1] != cell.CmdDirDone {
		t.Errorf("circuit cells %v, link cells %v", r.rec.circ, r.rec.link)
	}
}

// When a link closes it leaves the table, and the circuit layer and the
// Handler hear of it once.
func TestLinkClosed(t *testing.T) {
	net := &memnet.Network{}
	r := newNode(t, net, "10.0.0.2", true)
	c := newNode(t, net, "10.0.0.1", false)
	c.channel(t, r)
	waitFor(t, "the relay to record the link", func() bool { return r.m.Len() == 1 })
	r.m.Close()
	waitFor(t, "the client to see the link close", func() bool {
		_, _, _, down, chClose := c.rec.counts()
		return down == 1 && chClose == 1
	})
	if c.m.Len() != 0 || c.m.Preferred(r.keys.Link.Public()) != nil {
		t.Error("a closed link is still in the table")
	}
	if _, _, _, down, chClose := r.rec.counts(); down != 1 || chClose != 1 {
		t.Errorf("relay: LinkClosed %d, ChannelClosed %d times", down, chClose)
	}
}

// Both relays dial each other at once. Each end picks the same link (the
// one initiated by the lower key), and the other closes: one link remains.
func TestSimultaneousConnect(t *testing.T) {
	net := &memnet.Network{}
	// A grace long enough for both Dials to record their links first.
	grace := func(c *Config) { c.ReplaceGrace = 300 * time.Millisecond }
	a := newNode(t, net, "10.0.0.1", true, grace)
	b := newNode(t, net, "10.0.0.2", true, grace)
	// Dial rather than Channel: the accepted link could otherwise be
	// reused before the second dial starts.
	var wg sync.WaitGroup
	var errA, errB error
	wg.Go(func() { _, errA = a.dial(t, b) })
	wg.Go(func() { _, errB = b.dial(t, a) })
	wg.Wait()
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	waitFor(t, "both ends to record both links", func() bool {
		_, _, upA, _, _ := a.rec.counts()
		_, _, upB, _, _ := b.rec.counts()
		return upA == 2 && upB == 2
	})
	waitFor(t, "the extra link to close", func() bool { return a.m.Len() == 1 && b.m.Len() == 1 })
	pa, pb := a.m.Preferred(b.keys.Link.Public()), b.m.Preferred(a.keys.Link.Public())
	if pa == nil || pb == nil || !sameConn(pa, pb) {
		t.Fatal("the two ends kept different links")
	}
	ka, kb := a.keys.Link.Public(), b.keys.Link.Public()
	aLower := string(ka[:]) < string(kb[:])
	if pa.Initiator() != aLower {
		t.Errorf("kept the link initiated by the higher key (a initiated: %v, a lower: %v)", pa.Initiator(), aLower)
	}
}

// A newer link to a peer becomes the preferred one; the older one keeps
// its circuit and closes only once that circuit ended and ReplaceGrace
// passed. The peer, which accepted both, agrees.
func TestBetterLinkReplacesOld(t *testing.T) {
	net := &memnet.Network{}
	r := newNode(t, net, "10.0.0.2", true)
	c := newNode(t, net, "10.0.0.1", true)
	old := c.channel(t, r)
	if err := old.Send(cell.New(1<<31|5, cell.CmdCreate)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the relay to see the CREATE", func() bool { circ, _, _, _, _ := r.rec.counts(); return circ == 1 })
	rOld := r.peerLink(old)
	if old.Circuits() != 1 || rOld == nil || rOld.Circuits() != 1 {
		t.Fatal("the CREATE was not counted on both ends")
	}

	newer, err := c.dial(t, r)
	if err != nil {
		t.Fatal(err)
	}
	if c.channel(t, r) != newer || c.m.Preferred(r.keys.Link.Public()) != newer {
		t.Fatal("new circuits do not use the newer link")
	}
	if !old.Retired() || newer.Retired() {
		t.Fatal("the older link is not retired")
	}
	waitFor(t, "the relay to record the newer link", func() bool { return r.m.Len() == 2 })
	if p := r.m.Preferred(c.keys.Link.Public()); p == nil || !sameConn(p, newer) {
		t.Fatal("the relay prefers another link than the client")
	}
	time.Sleep(5 * c.m.cfg.ReplaceGrace)
	if c.m.Len() != 2 {
		t.Fatal("a link carrying a circuit was closed")
	}

	// The relay ends the circuit: the old link closes on both ends.
	if err := rOld.Send(cell.New(1<<31|5, cell.CmdDestroy)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the old link to close", func() bool { return c.m.Len() == 1 && r.m.Len() == 1 })
	select {
	case <-old.Done():
	default:
		t.Fatal("the old link is still open")
	}
	if c.m.Links()[0] != newer {
		t.Fatal("the newer link was closed")
	}
}

// If the preferred link closes, a retired one takes over and is no longer
// retired.
func TestRetiredLinkTakesOver(t *testing.T) {
	net := &memnet.Network{}
	r := newNode(t, net, "10.0.0.2", true)
	c := newNode(t, net, "10.0.0.1", false, func(c *Config) { c.ReplaceGrace = time.Hour })
	old := c.channel(t, r)
	newer, err := c.dial(t, r)
	if err != nil {
		t.Fatal(err)
	}
	if !old.Retired() {
		t.Fatal("not retired")
	}
	newer.Close()
	if c.m.Preferred(r.keys.Link.Public()) != old || old.Retired() {
		t.Fatal("the remaining link did not take over")
	}
}

func TestMaxLinksPerPeer(t *testing.T) {
	net := &memnet.Network{}
	r := newNode(t, net, "10.0.0.2", true)
	c := newNode(t, net, "10.0.0.1", false, func(c *Config) { c.MaxLinksPerPeer = 2; c.ReplaceGrace = time.Hour })
	for i := range 3 {
		_, err := c.dial(t, r)
		if i < 2 && err != nil {
			t.Fatal(err)
		}
		if i == 2 && !errors.Is(err, ErrTooManyLinks) {
			t.Fatalf("third link: %v", err)
		}
	}
	if c.m.Len() != 2 {
		t.Fatalf("%d links", c.m.Len())
	}
}

// Close cancels a dial stuck in its handshake and waits for it.
func TestCloseCancelsDials(t *testing.T) {
	net := &memnet.Network{}
	silent, err := net.Host("10.0.0.9").Listen(":7000") // accepts, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	r := newNode(t, net, "10.0.0.2", true) // only for its keys
	c := newNode(t, net, "10.0.0.1", false)
	errc := make(chan error, 1)
	go func() {
		_, err := c.m.Channel(context.Background(), r.keys.Identity.Public(), r.keys.Link.Public(), "mem://10.0.0.9:7000")
		errc <- err
	}()
	waitFor(t, "the dial", func() bool { return len(net.Dials()) == 1 })
	done := make(chan struct{})
	go func() { c.m.Close(); close(done) }()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("dial succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not cancel the dial")
	}
	<-done
	if _, err := c.m.Channel(ctxT(t), r.keys.Identity.Public(), r.keys.Link.Public(), r.addr); !errors.Is(err, ErrClosed) {
		t.Fatalf("Channel after Close: %v", err)
	}
	if err := c.m.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestListenNeedsStaticKey(t *testing.T) {
	c := newNode(t, &memnet.Network{}, "10.0.0.1", false)
	if _, err := c.m.Listen("mem://10.0.0.1:7000"); err == nil {
		t.Fatal("a client listened")
	}
}

// A link with a better suite is preferred whatever its age; the suite is
// the same at both ends, so they agree.
func TestBetterSuiteWins(t *testing.T) {
	if !link.HardwareAES() {
		t.Skip("AESGCM links need hardware AES")
	}
	net := &memnet.Network{}
	r := newNode(t, net, "10.0.0.2", true)
	c := newNode(t, net, "10.0.0.1", true, func(c *Config) { c.ReplaceGrace = time.Hour })
	aes := c.channel(t, r)
	c.m.mu.Lock()
	c.m.cfg.Link.Suite = link.SuiteChaChaPoly
	c.m.mu.Unlock()
	chacha, err := c.dial(t, r)
	if err != nil {
		t.Fatal(err)
	}
	if aes.ll.Load().Suite() != link.SuiteAESGCM || chacha.ll.Load().Suite() != link.SuiteChaChaPoly {
		t.Fatal("suites not as set up")
	}
	if c.m.Preferred(r.keys.Link.Public()) != aes || !chacha.Retired() {
		t.Fatal("the newer ChaChaPoly link replaced the AESGCM one")
	}
	waitFor(t, "the relay to record both links", func() bool { return r.m.Len() == 2 })
	if p := r.m.Preferred(c.keys.Link.Public()); p == nil || !sameConn(p, aes) {
		t.Fatal("the relay prefers another link")
	}
}

// Dial checks the relay's identity like Channel.
func TestDialChecksIdentity(t *testing.T) {
	net := &memnet.Network{}
	r := newNode(t, net, "10.0.0.2", true)
	other := newNode(t, net, "10.0.0.3", true)
	c := newNode(t, net, "10.0.0.1", false)
	if _, err := c.m.Dial(ctxT(t), other.keys.Identity.Public(), r.keys.Link.Public(), r.addr); !errors.Is(err, ErrWrongRelay) {
		t.Fatalf("got %v, want ErrWrongRelay", err)
	}
}
