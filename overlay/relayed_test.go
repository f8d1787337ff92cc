package overlay

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/circuit/exitpolicy"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
	"github.com/darkmatter/darkmatter/overlay/linkmgr"
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
// no NAT, the first candidates answer), the link manager prefers the new
// link for new circuits, and the relayed link stays usable meanwhile.
func TestRelayedLinkPunch(t *testing.T) {
	h := newHarness(t, "tcp", 3)
	defer h.close()
	n := natRelay(t, h, nil)
	cc, err := h.client.sw.BuildCircuit(ctxT(t), []circuit.Hop{hopTo(t, h.client, n), hopTo(t, h.client, h.relays[1])})
	if err != nil {
		t.Fatalf("circuit through a relayed first hop: %v", err)
	}
	circEcho(t, h, cc)
	waitFor(t, func() bool {
		return linkScheme(h.client.links.Preferred(n.keys.Link.Public())) == "quic"
	}, "the client's preferred link to the relay behind NAT is the punched QUIC link")
	// The circuit on the relayed link is still up.
	circEcho(t, h, cc)
	cc.Close()
	cc, err = h.client.sw.BuildCircuit(ctxT(t), []circuit.Hop{hopTo(t, h.client, n), hopTo(t, h.client, h.relays[1])})
	if err != nil {
		t.Fatalf("circuit on the punched link: %v", err)
	}
	circEcho(t, h, cc)
	cc.Close()
	if st := h.client.PunchStats(); st.Direct != 1 || st.Failed != 0 || st.Last <= 0 {
		t.Fatalf("client punch stats %+v", st)
	}
	if st := n.PunchStats(); st.Direct != 1 {
		t.Fatalf("relay behind NAT punch stats %+v", st)
	}
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
			const size = 16 << 20
			dial := func() (net.Conn, error) { return cc.OpenStream(ctxT(b), h.target.addr) }
			var total, first time.Duration
			b.SetBytes(size)
			for b.Loop() {
				total += timedDownload(b, dial, size)
				start := time.Now()
				c, err := dial()
				if err != nil {
					b.Fatal(err)
				}
				fmt.Fprintf(c, "D 1\n")
				if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
					b.Fatal(err)
				}
				first += time.Since(start)
				c.Close()
			}
			b.ReportMetric(float64(size)*float64(b.N)/total.Seconds()/1e6, "MB/s")
			b.ReportMetric(float64(first.Microseconds())/float64(b.N), "ttfb-µs")
		})
	}
}
