package overlay

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/circuit/exitpolicy"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
	"github.com/darkmatter/darkmatter/overlay/linkmgr"
	"github.com/darkmatter/darkmatter/overlay/relaylink"
	"github.com/darkmatter/darkmatter/overlay/transport"
	"github.com/darkmatter/darkmatter/overlay/transport/memnet"
)

// natRelay starts a relay that listens for QUIC on loopback only, as a
// relay behind NAT would on its home network, and reserves at one of the
// harness's relays; it returns once its descriptor lists the relayed
// address.
func natRelay(t testing.TB, h *harness, opt func(*Config)) *Node {
	t.Helper()
	cfg := Config{Network: "test-tcp", Listen: []string{"quic://127.0.0.1:0"}, Reserve: 1,
		AllowPrivateAddrs: true, AllowSameSubnet: true, Gossip: 500 * time.Millisecond,
		Bootstrap: []descriptor.Bootstrap{h.relays[0].Bootstrap()}}
	if opt != nil {
		opt(&cfg)
	}
	return startNATRelay(t, cfg)
}

// startNATRelay starts a relay that reserves and returns once its
// descriptor lists its relayed address.
func startNATRelay(t testing.TB, cfg Config) *Node {
	t.Helper()
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if err := n.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		d := n.Descriptor()
		return len(d.Addrs) == 1 && strings.HasPrefix(d.Addrs[0], "relay://")
	}, "the relay behind NAT lists its relayed address")
	return n
}

// hopTo returns the client's hop to relay r, from r's own descriptor.
func hopTo(t testing.TB, c, r *Node) circuit.Hop {
	t.Helper()
	hp, ok := c.hopOf(r.Descriptor())
	if !ok {
		t.Fatalf("no hop to %v", r.Descriptor().Addrs)
	}
	return hp
}

// circEcho opens a stream on cc to the harness's target and checks an echo.
func circEcho(t *testing.T, h *harness, cc *circuit.ClientCirc) {
	t.Helper()
	st, err := cc.OpenStream(ctxT(t), h.target.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	msg := "E\nthrough a relayed link"
	if _, err := io.WriteString(st, msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg)-2)
	st.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(st, got); err != nil || string(got) != msg[2:] {
		t.Fatalf("echo %q, %v", got, err)
	}
}

// A relay behind NAT reserves at a public relay and is reached through
// it: as the first hop of a client's circuit and as a middle hop that
// other relays extend to, the relay it reserved with among them. Bytes
// cross the relayed links end to end, and the relay counts its splices.
func TestRelayedLink(t *testing.T) {
	h := newHarnessWith(t, "tcp", 3, func(c *Config) {
		if len(c.Listen) == 0 {
			c.DisablePunch = true // this test keeps links relayed
		}
	})
	defer h.close()
	n := natRelay(t, h, func(c *Config) { c.DisablePunch = true })
	addr := n.Descriptor().Addrs[0]
	var reservedAt *Node
	for _, r := range h.relays {
		if r.HopStats().Reservations == 1 {
			reservedAt = r
		}
	}
	if reservedAt == nil || !strings.HasSuffix(addr, reservedAt.Addr().String()) {
		t.Fatalf("relayed address %s: no relay holds the reservation", addr)
	}
	// First hop: the client links to the relay behind NAT through the
	// public relay.
	cc, err := h.client.sw.BuildCircuit(ctxT(t), []circuit.Hop{hopTo(t, h.client, n), hopTo(t, h.client, h.relays[1])})
	if err != nil {
		t.Fatalf("circuit through a relayed first hop: %v", err)
	}
	circEcho(t, h, cc)
	cc.Close()
	if l := h.client.links.Preferred(n.keys.Link.Public()); l == nil || l.Addr().Scheme != SchemeRelay {
		t.Fatalf("the client's link to the relay behind NAT is %v, want relayed", linkScheme(l))
	}
	// Middle hop: every relay extends to it, the one that holds its
	// reservation by asking it to connect back.
	for i, r := range h.relays {
		waitFor(t, func() bool {
			d := r.dir.Get(n.NodeID())
			return d != nil && len(d.Addrs) == 1 && d.Addrs[0] == addr
		}, "the relays learn the relayed descriptor")
		last := h.relays[(i+1)%len(h.relays)]
		cc, err := h.client.sw.BuildCircuit(ctxT(t), []circuit.Hop{hopTo(t, h.client, r), hopTo(t, h.client, n), hopTo(t, h.client, last)})
		if err != nil {
			t.Fatalf("circuit with the relay behind NAT after relay %d: %v", i, err)
		}
		circEcho(t, h, cc)
		cc.Close()
	}
	st := reservedAt.HopStats()
	if st.Spliced < 1 || st.Bytes == 0 {
		t.Fatalf("hop stats %+v: want a splice and bytes relayed", st)
	}
}

func linkScheme(l *linkmgr.Link) string {
	if l == nil {
		return "none"
	}
	return l.Addr().Scheme
}

// Two ends of a relayed link punch a direct QUIC path (on loopback, with
// no NAT, the first candidates answer) and the link moves onto it (MOVE,
// spec/links.md §5.4) while a download runs on a circuit through it: the
// bytes arrive whole, the client keeps one link to the relay behind NAT,
// now on QUIC, and the hop relay's splice closes.
func TestRelayedLinkPunch(t *testing.T) {
	punchDelay = 300 * time.Millisecond
	t.Cleanup(func() { punchDelay = 0 })
	h := newHarness(t, "tcp", 3)
	defer h.close()
	n := natRelay(t, h, nil)
	cc, err := h.client.sw.BuildCircuit(ctxT(t), []circuit.Hop{hopTo(t, h.client, n), hopTo(t, h.client, h.relays[1])})
	if err != nil {
		t.Fatalf("circuit through a relayed first hop: %v", err)
	}
	defer cc.Close()
	l := h.client.links.Preferred(n.keys.Link.Public())
	if linkScheme(l) != SchemeRelay {
		t.Fatalf("the first link is %s, want relay", linkScheme(l))
	}
	st, err := cc.OpenStream(ctxT(t), h.target.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const size = 64 << 20
	fmt.Fprintf(st, "D %d\n", size)
	sum := sha256.New()
	st.SetReadDeadline(time.Now().Add(60 * time.Second))
	if n, err := io.CopyN(sum, st, size); err != nil || n != size {
		t.Fatalf("download across the move: %d bytes, %v", n, err)
	}
	if [32]byte(sum.Sum(nil)) != patternSum(size) {
		t.Fatal("download across the move: SHA-256 mismatch")
	}
	waitFor(t, l.Moved, "the link moves to the punched path")
	if got := h.client.links.Preferred(n.keys.Link.Public()); got != l || linkScheme(l) != "quic" {
		t.Fatalf("after the move the preferred link is %v (%s), want the same link on quic", got, linkScheme(got))
	}
	circEcho(t, h, cc) // the circuit built on the relayed link goes on
	if st := h.client.PunchStats(); st.Direct != 1 || st.Failed != 0 || st.Last <= 0 {
		t.Fatalf("client punch stats %+v", st)
	}
	waitFor(t, func() bool { return n.PunchStats().Direct == 1 }, "the relay behind NAT counts the punch")
	waitFor(t, func() bool {
		var open uint64
		for _, r := range h.relays {
			open += uint64(r.HopStats().Splices)
		}
		return open == 0
	}, "the hop relay's splice closes")
}

// natNet is the harness's network plus three relays behind NAT (on
// loopback, QUIC only, reached through the harness's relays) that exit to
// the target, for a circuit whose every link is relayed or punched.
func natNet(b testing.TB, punch bool) (*harness, []*Node) {
	h := newHarnessWith(b, "tcp", 3, func(c *Config) {
		c.DisablePunch = !punch
		// Every node is on 127.0.0.1: the per-address accept limits
		// would count them as one source.
		c.MaxLinksPerIP, c.MaxHandshakesPerIP = 1000, 1000
	})
	var ns []*Node
	for range 3 {
		ns = append(ns, natRelay(b, h, func(c *Config) {
			c.DisablePunch = !punch
			c.Exit = &circuit.ExitConfig{Policy: exitpolicy.AcceptAll(), ConnectTimeout: 5 * time.Second}
		}))
	}
	return h, ns
}

// BenchmarkCircuitNAT moves data through a 3-hop circuit of relays behind
// NAT (natNet) whose links are relayed through public relays, or punched
// to direct QUIC paths (on loopback every punch succeeds), and reports
// MB/s and the time to the first byte of a new stream on the built
// circuit. BenchmarkCircuitLinks gives the same figures with direct TCP
// and QUIC links for comparison; run both in one go.
func BenchmarkCircuitNAT(b *testing.B) {
	for _, mode := range []string{"relayed", "punched"} {
		b.Run(mode, func(b *testing.B) {
			h, ns := natNet(b, mode == "punched")
			defer h.close()
			path := []circuit.Hop{hopTo(b, h.client, ns[0]), hopTo(b, h.client, ns[1]), hopTo(b, h.client, ns[2])}
			cc, err := h.client.sw.BuildCircuit(ctxT(b), path)
			if err != nil {
				b.Fatal(err)
			}
			want := SchemeRelay
			if mode == "punched" {
				want = "quic"
			}
			links := func() bool {
				return linkScheme(h.client.links.Preferred(ns[0].keys.Link.Public())) == want &&
					linkScheme(ns[0].links.Preferred(ns[1].keys.Link.Public())) == want &&
					linkScheme(ns[1].links.Preferred(ns[2].keys.Link.Public())) == want
			}
			waitFor(b, links, "every link of the path is "+want)
			if mode == "punched" {
				// A circuit on the punched links.
				cc.Close()
				if cc, err = h.client.sw.BuildCircuit(ctxT(b), path); err != nil {
					b.Fatal(err)
				}
			}
			defer cc.Close()
			benchCircuit(b, func() (net.Conn, error) { return cc.OpenStream(ctxT(b), h.target.addr) })
		})
	}
}

// Peers that complete real link handshakes and then send what the NAT
// messages' rules forbid get nothing: reservations beyond the per-address
// bound are refused while a legitimate relay behind NAT still reserves
// and carries a circuit; malformed NAT cells, an INCOMING from a link
// holding no reservation and a PUNCH on a direct link are dropped and
// counted, and the links they came on stay up.
func TestNATHostile(t *testing.T) {
	h := newHarnessWith(t, "mem", 3, func(c *Config) {
		c.RelayVia = "mem"
		c.Hop.MaxReservationsPerIP = 2
	})
	defer h.close()
	r0 := h.relays[0]
	d0 := r0.Descriptor()

	// The attacker: a client on one address opening fresh links (a fresh
	// key each) to r0 and reserving on each.
	atk, err := New(Config{Network: "test-mem", Transports: transport.Registry{memnet.Scheme: h.mem.Host("10.66.0.1")},
		Bootstrap: []descriptor.Bootstrap{r0.Bootstrap()}, Preemptive: -1, RelayVia: "mem"})
	if err != nil {
		t.Fatal(err)
	}
	defer atk.Close()
	if err := atk.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	var granted, refused int
	var atkLinks []*linkmgr.Link
	for i := range 4 {
		dial := atk.links.Dial // a new link (up to linkmgr's 4 per peer)
		if i == 0 {
			dial = atk.links.Channel // the bootstrap link, or a first one
		}
		l, err := dial(ctxT(t), d0.Identity, d0.Link, d0.Addrs[0])
		if err != nil {
			t.Fatal(err)
		}
		atkLinks = append(atkLinks, l)
		if _, err := atk.reserveOn(ctxT(t), l); err != nil {
			refused++
		} else {
			granted++
		}
	}
	if granted != 2 || refused != 2 || r0.HopStats().Reservations != 2 {
		t.Fatalf("reservations from one address: %d granted, %d refused, %d held; want 2, 2, 2", granted, refused, r0.HopStats().Reservations)
	}

	// A legitimate relay behind NAT, on another address, still reserves
	// and carries a circuit through its relayed link.
	n := natRelayMem(t, h, "10.50.0.1")
	cc, err := h.client.sw.BuildCircuit(ctxT(t), []circuit.Hop{hopTo(t, h.client, n), hopTo(t, h.client, h.relays[1])})
	if err != nil {
		t.Fatalf("circuit through the relay behind NAT: %v", err)
	}
	circEcho(t, h, cc)
	cc.Close()

	// Malformed NAT cells: counted, the link stays.
	l := atkLinks[0]
	for _, body := range [][]byte{{9, 0, 0}, {1, 0, 5}, {2, 0, 1, 0}, {3, 0, 2, 1, 2}, {4, 0, 0}} {
		c := cell.New(0, cell.CmdNAT)
		copy(c.Body(), body)
		if err := l.Send(c); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return r0.Stats().NATMalformed == 5 }, "r0 counts 5 malformed NAT cells")
	// A PUNCH on a direct link: dropped and counted, no session.
	if err := atk.sendNAT(l, relaylink.Msg{Type: relaylink.TypePunch, Punch: []byte{1, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return r0.Stats().NATRefused == 1 }, "r0 refuses a PUNCH on a direct link")
	// An INCOMING over a link that holds none of n's reservations (the
	// attacker's link to n, made through n's relay): n dials nothing.
	nd := n.Descriptor()
	la, err := atk.links.Channel(ctxT(t), nd.Identity, nd.Link, nd.Addrs[0])
	if err != nil {
		t.Fatalf("the attacker's relayed link to n: %v", err)
	}
	hopRefused := func() (sum uint64) {
		for _, r := range h.relays {
			sum += r.HopStats().Refused
		}
		return sum
	}
	before := hopRefused()
	if err := atk.sendNAT(la, relaylink.Msg{Type: relaylink.TypeIncoming}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return n.Stats().NATRefused == 1 }, "n refuses an INCOMING from a link without its reservation")
	time.Sleep(50 * time.Millisecond)
	if got := hopRefused(); got != before {
		t.Errorf("n connected back with a forged token: the relays refused %d ACCEPTs", got-before)
	}
	select {
	case <-l.Done():
		t.Fatal("r0 closed the attacker's link over NAT messages")
	default:
	}
	waitFor(t, func() bool {
		d := r0.dir.Get(n.NodeID())
		return d != nil && slices.Equal(d.Addrs, nd.Addrs)
	}, "r0 learns the relayed descriptor")
	if _, err := h.client.sw.BuildCircuit(ctxT(t), []circuit.Hop{hopTo(t, h.client, r0), hopTo(t, h.client, n)}); err != nil {
		t.Fatalf("a circuit after the attack: %v", err)
	}
}

// natRelayMem starts a relay behind NAT on memnet at ip.
func natRelayMem(t *testing.T, h *harness, ip string, opts ...func(*Config)) *Node {
	t.Helper()
	cfg := Config{Network: "test-mem", Transports: transport.Registry{memnet.Scheme: h.mem.Host(ip)},
		Listen: []string{memnet.Scheme + "://" + ip + ":7000"}, Reserve: 1, RelayVia: "mem", AllowPrivateAddrs: true,
		Gossip: 500 * time.Millisecond, Bootstrap: []descriptor.Bootstrap{h.relays[0].Bootstrap()},
		Exit: &circuit.ExitConfig{Policy: exitpolicy.AcceptAll()}}
	for _, o := range opts {
		o(&cfg)
	}
	return startNATRelay(t, cfg)
}

// When the punch fails (here the relay behind NAT stops reading punch
// packets, as when a NAT maps per destination and nothing gets through),
// the session ends cleanly within its timeout and the link stays
// relayed, carrying circuits as before.
func TestRelayedLinkPunchFails(t *testing.T) {
	h := newHarness(t, "tcp", 3)
	defer h.close()
	n := natRelay(t, h, nil)
	n.mu.Lock()
	sock := n.udpSock
	n.mu.Unlock()
	sock.d.Punch().Close()
	cc, err := h.client.sw.BuildCircuit(ctxT(t), []circuit.Hop{hopTo(t, h.client, n), hopTo(t, h.client, h.relays[1])})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	// The punch gives up after nat.DefaultPunchTimeout (5 s).
	for end := time.Now().Add(30 * time.Second); h.client.PunchStats().Failed != 1; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the client's punch did not end: %+v", h.client.PunchStats())
		}
	}
	if st := h.client.PunchStats(); st.Attempts != 1 || st.Direct != 0 {
		t.Fatalf("client punch stats %+v", st)
	}
	if s := linkScheme(h.client.links.Preferred(n.keys.Link.Public())); s != SchemeRelay {
		t.Fatalf("after a failed punch the preferred link is %s, want relay", s)
	}
	circEcho(t, h, cc)
}

// Nothing above the link changes: in a network where half the relays are
// behind NAT (reached through relayed links, punched where possible),
// clients' streams and a hidden service work as in any other, and some
// circuits do run through relays behind NAT.
func TestNATMixedNetwork(t *testing.T) {
	hn := newHiddenNet(t, "tcp", 3)
	defer hn.close()
	var natted []*Node
	for range 3 {
		natted = append(natted, natRelay(t, hn.harness, func(c *Config) {
			c.DHTMinAge = -1
			c.Exit = &circuit.ExitConfig{Policy: exitpolicy.AcceptAll(), ConnectTimeout: 5 * time.Second,
				Resolve: hn.relays[0].cfg.Exit.Resolve}
		}))
	}
	for _, n := range []*Node{hn.client, hn.svc} {
		for end := time.Now().Add(30 * time.Second); len(n.Relays()) != 6; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("a client knows %d relays, want 6", len(n.Relays()))
			}
			n.refreshRound()
		}
	}
	isNAT := map[keys.NodeID]bool{}
	for _, n := range natted {
		isNAT[n.NodeID()] = true
	}
	through := 0
	for i := range 12 {
		st, err := hn.client.DialStream(ctxT(t), hn.target.addr, fmt.Sprint("isolation ", i))
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		msg := fmt.Sprintf("E\nstream %d", i)
		io.WriteString(st, msg)
		got := make([]byte, len(msg)-2)
		st.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(st, got); err != nil || string(got) != msg[2:] {
			t.Fatalf("stream %d: echo %q, %v", i, got, err)
		}
		for _, hop := range st.(*circuit.Stream).Circuit().Hops() {
			if isNAT[hop.Identity.NodeID()] {
				through++
				break
			}
		}
		st.Close()
	}
	if through == 0 {
		t.Fatal("no circuit ran through a relay behind NAT")
	}
	addr, _ := hn.listen(t)
	c, err := hn.client.Dial(ctxT(t), "tcp", addr)
	if err != nil {
		t.Fatalf("hidden service: %v", err)
	}
	defer c.Close()
	io.WriteString(c, "E\nhidden")
	got := make([]byte, 6)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "hidden" {
		t.Fatalf("hidden service echo %q, %v", got, err)
	}
	t.Logf("%d of 12 circuits ran through a relay behind NAT", through)
}
