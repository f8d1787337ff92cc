package overlay

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
	"github.com/darkmatter/darkmatter/overlay/transport"
	"github.com/darkmatter/darkmatter/overlay/transport/memnet"
)

// pubNet is a memnet network whose relays have public addresses, so the
// default extend rules apply (the harness's relays are all on private
// addresses and allow them).
type pubNet struct {
	t      *testing.T
	mem    *memnet.Network
	relays map[string]*Node // by IP
	first  descriptor.Bootstrap
}

func newPubNet(t *testing.T) *pubNet {
	return &pubNet{t: t, mem: &memnet.Network{}, relays: make(map[string]*Node)}
}

// relay starts a relay listening on mem://ip:7000, bootstrapped from the
// first relay started.
func (p *pubNet) relay(ip string, opts ...func(*Config)) *Node {
	p.t.Helper()
	cfg := Config{
		Network:    "test-pub",
		Transports: transport.Registry{memnet.Scheme: p.mem.Host(ip)},
		Listen:     []string{memnet.Scheme + "://" + ip + ":7000"},
	}
	if p.first.Addr != "" {
		cfg.Bootstrap = []descriptor.Bootstrap{p.first}
	}
	for _, o := range opts {
		o(&cfg)
	}
	n, err := New(cfg)
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { n.Close() })
	if err := n.Start(ctxT(p.t)); err != nil {
		p.t.Fatal(err)
	}
	if p.first.Addr == "" {
		p.first = n.Bootstrap()
	}
	p.relays[ip] = n
	return n
}

// dialedTo reports whether any node of the network dialled addr
// ("ip:port").
func (p *pubNet) dialedTo(addr string) bool {
	return slices.ContainsFunc(p.mem.Dials(), func(d memnet.DialRecord) bool { return d.To == addr })
}

// listen starts a plain listener at addr that accepts and never answers:
// a port that is no relay, or a black hole.
func (p *pubNet) listen(ip, port string) {
	p.t.Helper()
	ln, err := p.mem.Host(ip).Listen(":" + port)
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { ln.Close() })
}

// A relay extends only to a relay of its directory, at an address of that
// relay's signed descriptor, never to a loopback or private address by
// default, never to itself; everything else is refused with
// circuit.ErrExtendRefused without dialling anything. (Before, EXTEND made
// a relay connect to whatever address it named.)
func TestExtendRules(t *testing.T) {
	p := newPubNet(t)
	a := p.relay("11.1.0.1")
	b := p.relay("11.2.0.1")
	loop := p.relay("127.0.0.1")  // a real relay, on loopback
	priv := p.relay("10.3.0.1")   // a real relay, on a private address
	p.listen("11.9.0.1", "22")    // a port that is no relay
	p.listen("127.0.0.1", "9000") // a local service
	waitFor(t, func() bool { return len(a.Relays()) == 4 }, "relay a knows every relay")

	other, err := keys.GenerateNodeKeys(nil)
	if err != nil {
		t.Fatal(err)
	}
	bd, ld, pd := b.Descriptor(), loop.Descriptor(), priv.Descriptor()
	ad := a.Descriptor()
	for _, tc := range []struct {
		name     string
		identity keys.IdentityPublicKey
		link     keys.LinkPublicKey
		addr     string
	}{
		{"loopback relay", ld.Identity, ld.Link, "mem://127.0.0.1:7000"},
		{"private relay", pd.Identity, pd.Link, "mem://10.3.0.1:7000"},
		{"local service with a relay's keys", bd.Identity, bd.Link, "mem://127.0.0.1:9000"},
		{"port that is no relay", bd.Identity, bd.Link, "mem://11.9.0.1:22"},
		{"unknown identity", other.Identity.Public(), other.Link.Public(), "mem://11.9.0.1:22"},
		{"identity with another relay's link key", bd.Identity, pd.Link, "mem://11.2.0.1:7000"},
		{"the relay itself", ad.Identity, ad.Link, "mem://11.1.0.1:7000"},
		{"empty host", bd.Identity, bd.Link, "mem://:7000"},
		{"name in brackets", bd.Identity, bd.Link, "mem://[b.example]:7000"},
	} {
		before := len(p.mem.Dials())
		_, err := extender{a}.Channel(ctxT(t), tc.identity, tc.link, tc.addr)
		if !errors.Is(err, circuit.ErrExtendRefused) {
			t.Errorf("%s: %v, want ErrExtendRefused", tc.name, err)
		}
		if n := len(p.mem.Dials()); n != before {
			t.Errorf("%s: the relay dialled %v", tc.name, p.mem.Dials()[before:])
		}
	}
	if got := a.Stats().ExtendRefused; got != 9 {
		t.Errorf("ExtendRefused = %d, want 9", got)
	}

	// A relay at a public address of its descriptor: extended to.
	l, err := extender{a}.Channel(ctxT(t), bd.Identity, bd.Link, bd.Addrs[0])
	if err != nil || l == nil {
		t.Fatalf("extend to a public relay: %v", err)
	}
}

// A network that allows private addresses (the testnet, a LAN) extends to
// its relays there.
func TestExtendPrivateAllowed(t *testing.T) {
	p := newPubNet(t)
	allow := func(c *Config) { c.AllowPrivateAddrs = true }
	a := p.relay("10.1.0.1", allow)
	loop := p.relay("127.0.0.1", allow)
	waitFor(t, func() bool { return len(a.Relays()) == 2 }, "relay a knows the other")
	ld := loop.Descriptor()
	a.links.Connected(ld.Identity, ld.Link).Close() // so that a has to dial
	if _, err := (extender{a}).Channel(ctxT(t), ld.Identity, ld.Link, ld.Addrs[0]); err != nil {
		t.Fatal(err)
	}
	// Its own address is refused even so.
	ad := a.Descriptor()
	if _, err := (extender{loop}).Channel(ctxT(t), ad.Identity, ad.Link, "mem://127.0.0.1:7000"); !errors.Is(err, circuit.ErrExtendRefused) {
		t.Errorf("extend to the relay's own address: %v", err)
	}
}

// A client's EXTEND that pairs a real relay's keys with a black hole (an
// address that accepts and never answers) is refused at once and dials
// nothing, so it cannot hold up an honest EXTEND to that relay, which
// works; a circuit to a private relay fails at the hop that refuses.
func TestExtendBlackHole(t *testing.T) {
	p := newPubNet(t)
	a := p.relay("11.1.0.1")
	b := p.relay("11.2.0.1")
	priv := p.relay("10.3.0.1")
	p.listen("11.8.0.1", "7000") // the black hole
	waitFor(t, func() bool { return len(a.Relays()) == 3 }, "relay a knows every relay")
	c, err := New(Config{Network: "test-pub", Transports: transport.Registry{memnet.Scheme: p.mem.Host("11.200.0.1")},
		Bootstrap: []descriptor.Bootstrap{a.Bootstrap()}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	hop := func(n *Node) circuit.Hop {
		h, ok := c.hopOf(c.dir.Get(n.NodeID()))
		if !ok {
			t.Fatal("no hop")
		}
		return h
	}
	ha, hb := hop(a), hop(b)
	bad := hb
	bad.Addr = "mem://11.8.0.1:7000"
	start := time.Now()
	if _, err := c.sw.BuildCircuit(ctxT(t), []circuit.Hop{ha, bad}); err == nil {
		t.Fatal("a circuit through a black hole was built")
	}
	if time.Since(start) > 5*time.Second || p.dialedTo("11.8.0.1:7000") {
		t.Fatalf("the relay dialled the black hole (%v)", time.Since(start))
	}
	cc, err := c.sw.BuildCircuit(ctxT(t), []circuit.Hop{ha, hb})
	if err != nil {
		t.Fatalf("honest EXTEND: %v", err)
	}
	cc.Close()
	if _, err := c.sw.BuildCircuit(ctxT(t), []circuit.Hop{ha, hop(priv)}); err == nil {
		t.Fatal("relay a extended to a private address")
	}
	if n := a.Stats().ExtendRefused; n != 2 {
		t.Errorf("ExtendRefused = %d, want 2", n)
	}
}

// A relay stores a peer's HELLO descriptor only if the link comes from an
// address the descriptor lists, so no peer can announce a descriptor that
// names someone else's address.
func TestHelloFromOwnAddressOnly(t *testing.T) {
	d := &descriptor.Descriptor{Addrs: []string{"tcp://192.0.2.1:7000", "tcp://[2001:db8::1]:7000"}}
	for _, tc := range []struct {
		remote string
		ok     bool
	}{
		{"192.0.2.1:50000", true},
		{"[2001:db8::1]:50000", true},
		{"[::ffff:192.0.2.1]:1", true},
		{"192.0.2.2:50000", false},
		{"[2001:db8::2]:1", false},
	} {
		remote := net.TCPAddrFromAddrPort(netipMustAddrPort(tc.remote))
		if got := announcedFrom(d, remote); got != tc.ok {
			t.Errorf("from %s: %v, want %v", tc.remote, got, tc.ok)
		}
	}
	// Another address of the same family than the link's cannot be
	// vouched for, nor can a host name.
	for _, addrs := range [][]string{
		{"tcp://192.0.2.1:7000", "tcp://198.51.100.1:22"},
		{"tcp://192.0.2.1:7000", "tcp://relay.example:7000"},
	} {
		d := &descriptor.Descriptor{Addrs: addrs}
		if announcedFrom(d, net.TCPAddrFromAddrPort(netipMustAddrPort("192.0.2.1:1"))) {
			t.Errorf("%v taken from 192.0.2.1", addrs)
		}
	}

	// Over links: a relay whose descriptor names another address than
	// the one it connects from is not stored.
	p := newPubNet(t)
	a := p.relay("11.1.0.1")
	liar := p.relay("11.2.0.1", func(c *Config) { c.Advertise = []string{"mem://11.9.0.1:22"} })
	_ = liar
	honest := p.relay("11.3.0.1")
	waitFor(t, func() bool { return a.dir.Get(honest.NodeID()) != nil }, "relay a stores the honest relay")
	if a.dir.Get(liar.NodeID()) != nil || a.Stats().HelloRefused == 0 {
		t.Error("relay a stored a descriptor announced from another address")
	}
}

// A relay that listens on an unspecified address needs Advertise: its
// descriptor would name an address nobody can reach.
func TestUnspecifiedListenNeedsAdvertise(t *testing.T) {
	mem := &memnet.Network{}
	tr := transport.Registry{memnet.Scheme: mem.Host("11.1.0.1"), transport.SchemeTCP: &transport.TCP{}}
	for _, l := range []string{"0.0.0.0:7000", "tcp://[::]:7000", ":7000", "mem://0.0.0.0:7000"} {
		if _, err := New(Config{Transports: tr, Listen: []string{"127.0.0.1:0", l}}); err == nil {
			t.Errorf("listening on %s without Advertise", l)
		}
	}
	if _, err := New(Config{Transports: tr, Listen: []string{"mem://0.0.0.0:7000"}, Advertise: []string{"0.0.0.0:7000"}}); err == nil {
		t.Error("advertising an unspecified address")
	}
	n, err := New(Config{Network: "x", Transports: tr, Listen: []string{"mem://0.0.0.0:7000"}, Advertise: []string{"mem://11.1.0.1:7000"}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if a := n.Descriptor().Addrs; len(a) != 1 || a[0] != "mem://11.1.0.1:7000" {
		t.Errorf("descriptor addresses %v", a)
	}
}

func netipMustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// A hop names the relay by an address with an IP address when its
// descriptor lists one: relays extend only to those.
func TestHopPrefersIPAddress(t *testing.T) {
	n, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	d := &descriptor.Descriptor{Addrs: []string{"quic://192.0.2.9:7000", "tcp://relay.example:7000", "tcp://192.0.2.1:7000"}}
	if h, ok := n.hopOf(d); !ok || h.Addr != "tcp://192.0.2.1:7000" {
		t.Errorf("hop address %q", h.Addr)
	}
	// An IP address over a name, whatever the transport; TCP over QUIC
	// for the same kind of address (it carries more on the same hosts:
	// spec/links-quic.md).
	d.Addrs = d.Addrs[:2]
	if h, ok := n.hopOf(d); !ok || h.Addr != "quic://192.0.2.9:7000" {
		t.Errorf("hop address %q", h.Addr)
	}
	d.Addrs = []string{"tcp://relay.example:7000", "sctp://192.0.2.3:7000"}
	if h, ok := n.hopOf(d); !ok || h.Addr != "tcp://relay.example:7000" {
		t.Errorf("hop address %q", h.Addr)
	}
}
