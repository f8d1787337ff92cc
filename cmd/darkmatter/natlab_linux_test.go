package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/nat/natlab"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
)

// Issue 16's process scenarios in the kernel NAT lab (package
// nat/natlab): relay processes in the lab's public namespace, and
// publish, proxy and "nat probe" processes in the home namespaces behind
// the routers' MASQUERADE, as users behind home routers run them.

// labPageSize is the size of the page the hidden service serves.
const labPageSize = 300 << 10

// labPage is a deterministic page of labPageSize bytes.
var labPage = sync.OnceValue(func() []byte {
	b := make([]byte, labPageSize)
	_, _ = rand.NewChaCha8([32]byte{'n', 'a', 't', 'l', 'a', 'b'}).Read(b)
	return b
})

// labRelay is one relay process in the lab's public namespace.
type labRelay struct {
	name, data, boot string
	p                *proc
}

// startLabRelay starts a relay listening on ip (one of the public
// namespace's addresses) and waits for its ready and bootstrap lines. The
// lab's addresses are TEST-NET-3, which the overlay counts as private:
// relays need --allow-private-addrs to extend to each other.
func startLabRelay(t testing.TB, l *natlab.Lab, bin, dir, name string, ip netip.Addr, args ...string) *labRelay {
	t.Helper()
	r := &labRelay{name: name, data: filepath.Join(dir, name)}
	args = append([]string{"relay", "--listen", netip.AddrPortFrom(ip, 0).String(), "--allow-private-addrs",
		"--data", r.data, "--log-level", "info"}, args...)
	r.p = startCmd(t, name, l.Command(l.Public, bin, args...))
	m, err := r.p.waitLine(reRelayReady, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m[1], ip.String()+":") {
		t.Fatalf("%s ready on %s, want an address on %v", name, m[1], ip)
	}
	m, err = r.p.waitLine(reBootstrap, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := descriptor.ParseBootstrap(m[1]); err != nil {
		t.Fatalf("%s prints a bootstrap string that does not parse: %v", name, err)
	}
	r.boot = m[1]
	return r
}

var (
	reLabMapped  = regexp.MustCompile(`(?m)^server (\S+): mapped (\S+)$`)
	reLabMapping = regexp.MustCompile(`(?m)^mapping: (\S+)$`)
)

// "darkmatter nat probe" behind each router asks three relay processes
// (two ports of one public IP and a second IP): every relay sees the
// router's public address, the node is not public, and the mapping is
// what the router's NAT does: MASQUERADE keeps one port for every
// destination, --random-fully draws one per destination.
func TestLabNATProbe(t *testing.T) {
	l := natlab.New(t, natlab.Options{A: natlab.Masquerade, B: natlab.RandomFully})
	bin := darkmatterBinary(t)
	dir := t.TempDir()
	start := time.Now()
	var boots []string
	for i, ip := range []netip.Addr{natlab.STUN1, natlab.STUN1, natlab.STUN2} {
		r := startLabRelay(t, l, bin, dir, fmt.Sprintf("relay%d", i+1), ip)
		boots = append(boots, "--bootstrap", r.boot)
	}
	t.Logf("3 relays up in %v", time.Since(start).Round(time.Millisecond))
	for _, tc := range []struct {
		ns      string
		router  string
		nat     natlab.NAT
		public  netip.Addr
		mapping string
	}{
		{l.HomeA, l.RouterA, natlab.Masquerade, natlab.PublicA, "endpoint-independent"},
		{l.HomeB, l.RouterB, natlab.RandomFully, natlab.PublicB, "address-and-port-dependent"},
	} {
		t.Run(tc.nat.String(), func(t *testing.T) {
			args := append([]string{"nat", "probe", "--timeout", "2s"}, boots...)
			p := startCmd(t, "nat-probe", l.Command(tc.ns, bin, args...))
			err, ok := p.wait(15 * time.Second)
			if !ok || err != nil {
				t.Fatalf("nat probe: %v (finished: %v)\n%s", err, ok, p.output())
			}
			p.mu.Lock()
			out := p.stdout.String()
			p.mu.Unlock()
			t.Logf("nat probe behind %s:\n%s", tc.nat, out)
			ms := reLabMapped.FindAllStringSubmatch(out, -1)
			if len(ms) != 3 {
				t.Fatalf("%d mapped addresses, want one from each of the 3 relays", len(ms))
			}
			for _, m := range ms {
				ap, err := netip.ParseAddrPort(m[2])
				if err != nil {
					t.Fatalf("server %s: mapped %q: %v", m[1], m[2], err)
				}
				if ap.Addr() != tc.public {
					t.Errorf("server %s saw %v, want router's public address %v", m[1], ap.Addr(), tc.public)
				}
			}
			if !strings.Contains(out, "public: no\n") {
				t.Error("the probe does not say the node is behind a NAT")
			}
			if m := reLabMapping.FindStringSubmatch(out); m == nil || m[1] != tc.mapping {
				t.Errorf("mapping line %q, want %q", m, tc.mapping)
			}
			if n, err := l.Masqueraded(tc.router); err != nil || n < 3 {
				t.Errorf("the router masqueraded %d flows (%v), want one to each of the 3 relays at least", n, err)
			}
		})
	}
}

// A hidden service published from behind router A and visited through a
// proxy behind router B, both NATs doing MASQUERADE, and B also as a
// symmetric NAT (--random-fully): four relay processes in the public
// namespace, a publish process in home A forwarding to an HTTP server
// whose socket is in home A, a proxy process in home B whose HTTP proxy
// the test reaches from home B. A page of labPageSize bytes arrives
// byte-identical.
func TestLabHiddenServiceBehindNAT(t *testing.T) {
	for _, b := range []natlab.NAT{natlab.Masquerade, natlab.RandomFully} {
		t.Run("client-"+b.String(), func(t *testing.T) {
			start := time.Now()
			l := natlab.New(t, natlab.Options{A: natlab.Masquerade, B: b})
			bin := darkmatterBinary(t)
			dir := t.TempDir()
			relays := startLabNetwork(t, l, bin, dir, 4, 1)
			boot := relays[0].boot

			target := startLabTarget(t, l, l.HomeA)
			keyFile, addr := newServiceKey(t, dir)
			pubArgs := append([]string{"publish", "--key", keyFile, "--target", target, "--port", "80",
				"--bootstrap", boot, "--data", filepath.Join(dir, "publish"), "--log-level", "info"}, hsNetFlags...)
			pub := startCmd(t, "publish", l.Command(l.HomeA, bin, pubArgs...))
			m, err := pub.waitLine(rePublished, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if m[2] != addr {
				t.Fatalf("publish prints address %s, the key's is %s", m[2], addr)
			}
			t.Logf("service published from behind NAT A %v after the start (it says %s)", time.Since(start).Round(time.Millisecond), m[1])

			pxArgs := append([]string{"proxy", "--bootstrap", boot, "--socks", "127.0.0.1:0", "--http", "127.0.0.1:0",
				"--data", filepath.Join(dir, "proxy"), "--log-level", "info"}, hsNetFlags...)
			px := startCmd(t, "proxy", l.Command(l.HomeB, bin, pxArgs...))
			m, err = px.waitLine(reProxyReady, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			httpAddr := m[2]

			// The proxy listens on home B's loopback: only a
			// connection made in home B reaches it.
			tr := &http.Transport{
				Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: httpAddr}),
				DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
					return l.DialContext(ctx, l.HomeB, network, a)
				},
			}
			defer tr.CloseIdleConnections()
			cl := &http.Client{Transport: tr, Timeout: 30 * time.Second}
			t0 := time.Now()
			resp, err := cl.Get("http://" + addr + "/page")
			if err != nil {
				t.Fatalf("GET through the proxy behind NAT B: %v", err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("GET http://%s/page: %s, %d bytes, %v", addr, resp.Status, len(body), err)
			}
			if !bytes.Equal(body, labPage()) {
				t.Fatalf("got %d bytes, not the %d bytes the service serves", len(body), labPageSize)
			}
			t.Logf("%d KiB byte-identical from behind NAT A to behind NAT B (%s) in %v; whole scenario %v",
				labPageSize>>10, b, time.Since(t0).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
			// Both processes reached the relays only through their
			// routers' NAT.
			for _, r := range []string{l.RouterA, l.RouterB} {
				n, err := l.Masqueraded(r)
				if err != nil || n == 0 {
					t.Errorf("router %s masqueraded %d connections (%v)", r, n, err)
				}
				t.Logf("router %s masqueraded %d connections", r, n)
			}

			px.interrupt(t)
			pub.interrupt(t)
		})
	}
}

// startLabNetwork starts n relay processes on the public namespace's
// first address (the first is everybody's bootstrap relay, the next exits
// ones are exits accepting only 127.0.0.1:9, which nothing uses), and
// waits until each knows all n. Not on its second address: a relay
// listening there dials its links from the first (the kernel's source
// address; the TCP transport does not bind the listen address), and its
// peers refuse a HELLO whose addresses do not include the link's IP.
func startLabNetwork(t testing.TB, l *natlab.Lab, bin, dir string, n, exits int) []*labRelay {
	t.Helper()
	start := time.Now()
	var relays []*labRelay
	for i := 1; i <= n; i++ {
		args := append([]string{"--gossip-interval", "300ms"}, hsNetFlags...)
		if i > 1 {
			args = append(args, "--bootstrap", relays[0].boot)
		}
		if i > 1 && i <= 1+exits {
			args = append(args, "--exit", "--exit-policy", "accept 127.0.0.1:9,reject *:*")
		}
		relays = append(relays, startLabRelay(t, l, bin, dir, fmt.Sprintf("relay%d", i), natlab.STUN1, args...))
	}
	for _, r := range relays {
		var last int
		if err := pollUntil(30*time.Second, func() (bool, error) {
			st, err := queryStatus(r.data, false)
			if err != nil {
				return false, err
			}
			last = st.Relays
			return st.Relays == n, nil
		}); err != nil {
			t.Fatalf("%s knows %d relays, want %d: %v", r.name, last, n, err)
		}
	}
	t.Logf("%d relays up in the public namespace, each knowing all, in %v", n, time.Since(start).Round(time.Millisecond))
	return relays
}

// startLabTarget serves labPage at /page on a listener on the loopback of
// namespace ns, until the test ends, and returns its address.
func startLabTarget(t *testing.T, l *natlab.Lab, ns string) string {
	t.Helper()
	ln, err := l.Listen(ns, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/page", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(labPage())
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("target: %v", err)
		}
	})
	return ln.Addr().String()
}

// labNATPairs are the NAT pairs of the punch tests: router A's (the home
// of the relay behind NAT), then router B's (the home of the client).
var labNATPairs = []struct{ a, b natlab.NAT }{
	{natlab.Masquerade, natlab.Masquerade},
	{natlab.Masquerade, natlab.RandomFully},
	{natlab.RandomFully, natlab.Masquerade},
	{natlab.RandomFully, natlab.RandomFully},
}

// labPairName names a NAT pair in test and benchmark names.
func labPairName(a, b natlab.NAT) string { return "A=" + a.String() + ",B=" + b.String() }

// labNattedPort is the QUIC port the relay behind NAT A listens on, on
// home A's address: on 0.0.0.0 the relay would need --advertise.
const labNattedPort = 7000

// labPunch is a punch scene: two relays in the public namespace (on
// STUN1, see startLabNetwork) and a relay in home A, behind router A,
// that reserved at one of them and listens for QUIC, so it takes hole
// punches.
type labPunch struct {
	l        *natlab.Lab
	bin, dir string
	boot     string // the first public relay's bootstrap string
	target   string // the relayed bootstrap string of the relay behind NAT
	natted   *proc
	clients  int // nat connect processes started so far
}

// startLabPunch starts the scene in l and waits until the relay behind
// NAT prints its relayed bootstrap string.
func startLabPunch(tb testing.TB, l *natlab.Lab, bin string) *labPunch {
	tb.Helper()
	start := time.Now()
	s := &labPunch{l: l, bin: bin, dir: tb.TempDir()}
	relays := startLabNetwork(tb, l, bin, s.dir, 2, 0)
	s.boot = relays[0].boot
	s.natted = startCmd(tb, "natted", l.Command(l.HomeA, bin, "relay",
		"--listen", "quic://"+netip.AddrPortFrom(natlab.HomeAddrA, labNattedPort).String(), "--reserve", "1", "--allow-private-addrs",
		"--bootstrap", s.boot, "--data", filepath.Join(s.dir, "natted"), "--log-level", "debug"))
	m, err := s.natted.waitLine(reReachable, 30*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	s.target = m[1]
	tb.Logf("relay behind NAT A reachable as %s, %v after the start", s.target, time.Since(start).Round(time.Millisecond))
	return s
}

var (
	reLabLink   = regexp.MustCompile(`(?m)^link: relay://(\S+) in (\S+)$`)
	reLabDirect = regexp.MustCompile(`(?m)^direct: quic://(\S+) after (\S+) \(hole punched\)$`)
)

// labPunchFailed is what nat connect prints when the punch ran and failed.
const labPunchFailed = "direct: none (the punch failed; the link stays relayed)"

// labConnect is what one nat connect process printed and how long it ran.
type labConnect struct {
	out    string         // its standard output
	log    string         // its log (standard error)
	took   time.Duration  // its run time, start to exit
	end    time.Time      // when its exit was seen
	link   netip.AddrPort // the relay the link went through
	direct netip.AddrPort // the punched address, invalid if none
	after  time.Duration  // nat connect's time to the direct link
}

// connect runs nat connect in home B against the relay behind NAT A,
// waiting at most wait for the punch, and fails tb unless it exits
// cleanly within bound and prints its link line.
func (s *labPunch) connect(tb testing.TB, wait, bound time.Duration, extra ...string) labConnect {
	tb.Helper()
	s.clients++
	args := append([]string{"nat", "connect", "--bootstrap", s.boot, "--wait", wait.String(),
		"--data", filepath.Join(s.dir, fmt.Sprintf("client%d", s.clients))}, extra...)
	args = append(args, s.target)
	start := time.Now()
	p := startCmd(tb, fmt.Sprintf("nat-connect-%d", s.clients), s.l.Command(s.l.HomeB, s.bin, args...))
	err, ok := p.wait(bound)
	if !ok || err != nil {
		tb.Fatalf("nat connect: %v (exited within %v: %v)\n%s", err, bound, ok, p.output())
	}
	var c labConnect
	c.end = time.Now()
	c.log = p.output()
	c.took = c.end.Sub(start)
	p.mu.Lock()
	c.out = p.stdout.String()
	p.mu.Unlock()
	m := reLabLink.FindStringSubmatch(c.out)
	if m == nil {
		tb.Fatalf("nat connect printed no link line:\n%s\n%s", c.out, p.output())
	}
	if c.link, err = netip.ParseAddrPort(m[1]); err != nil {
		tb.Fatalf("link address %q: %v", m[1], err)
	}
	if m := reLabDirect.FindStringSubmatch(c.out); m != nil {
		if c.direct, err = netip.ParseAddrPort(m[1]); err != nil {
			tb.Fatalf("direct address %q: %v", m[1], err)
		}
		if c.after, err = time.ParseDuration(m[2]); err != nil {
			tb.Fatalf("direct after %q: %v", m[2], err)
		}
	}
	return c
}

// A client behind router B links to a relay behind router A through the
// public relay the latter reserved at, and the two punch over that link
// (spec/nat.md §6). With MASQUERADE on both routers (endpoint-independent
// mapping) the punch opens a direct QUIC path to router A's public
// address; when either router does --random-fully (a symmetric NAT: the
// port the peer was told is not the one it punches from) the punch fails
// within its timeout and the link stays relayed.
func TestLabPunch(t *testing.T) {
	for _, pair := range labNATPairs {
		t.Run(labPairName(pair.a, pair.b), func(t *testing.T) {
			start := time.Now()
			l := natlab.New(t, natlab.Options{A: pair.a, B: pair.b})
			bin := darkmatterBinary(t)
			s := startLabPunch(t, l, bin)
			c := s.connect(t, 10*time.Second, 30*time.Second, "--log-level", "debug")
			t.Logf("nat connect in %v:\n%s", c.took.Round(time.Millisecond), c.out)
			if c.link.Addr() != natlab.STUN1 {
				t.Errorf("linked through %v, want a public relay on %v", c.link, natlab.STUN1)
			}
			if pair.a == natlab.Masquerade && pair.b == natlab.Masquerade {
				if !c.direct.IsValid() {
					t.Fatalf("no direct path between two MASQUERADE routers")
				}
				if c.direct.Addr() != natlab.PublicA {
					t.Errorf("punched to %v, want router A's public address %v", c.direct, natlab.PublicA)
				}
			} else {
				if c.direct.IsValid() {
					t.Fatalf("punched to %v through a --random-fully router", c.direct)
				}
				if !strings.Contains(c.out, labPunchFailed) {
					t.Fatalf("nat connect does not say the punch failed")
				}
				// Coordination worked: what failed is the punch
				// itself, at its packet or time bound.
				if !strings.Contains(c.log, "hole punch failed") {
					t.Errorf("nat connect's log does not say the hole punch failed:\n%s", c.log)
				}
			}
			// The relay behind NAT counts the punch as the client
			// saw it (its side ends within the same timeout), and
			// the public relay spliced the link.
			want := labPunchCounts{attempts: 1, direct: 1}
			if c.direct == (netip.AddrPort{}) {
				want = labPunchCounts{attempts: 1, failed: 1}
			}
			var got labPunchCounts
			if err := pollUntil(10*time.Second, func() (bool, error) {
				var err error
				got, err = labPunchStatus(s.natted.name, filepath.Join(s.dir, "natted"))
				return got == want, err
			}); err != nil {
				t.Errorf("relay behind NAT counts punches %+v, want %+v: %v", got, want, err)
			}
			t.Logf("relay behind NAT counts %+v %v after nat connect's exit", got, time.Since(c.end).Round(time.Millisecond))
			var spliced uint64
			for _, r := range []string{"relay1", "relay2"} {
				n, err := labCounter(filepath.Join(s.dir, r), "relayed links: splices made")
				if err != nil {
					t.Errorf("%s's status: %v", r, err)
				}
				spliced += n
			}
			if spliced == 0 {
				t.Error("the public relays made no splice")
			}
			for _, r := range []string{l.RouterA, l.RouterB} {
				if n, err := l.Masqueraded(r); err != nil || n == 0 {
					t.Errorf("router %s masqueraded %d connections (%v)", r, n, err)
				}
			}
			t.Logf("whole scenario %v", time.Since(start).Round(time.Millisecond))
		})
	}
}

// labPunchCounts are a node's hole punching counters from its status.
type labPunchCounts struct{ attempts, direct, failed uint64 }

// labPunchStatus reads the punch counters of the node whose data
// directory is data.
func labPunchStatus(name, data string) (labPunchCounts, error) {
	var c labPunchCounts
	for _, f := range []struct {
		name string
		to   *uint64
	}{
		{"hole punching: attempts", &c.attempts},
		{"hole punching: direct links made", &c.direct},
		{"hole punching: failed (link stays relayed)", &c.failed},
	} {
		n, err := labCounter(data, f.name)
		if err != nil {
			return c, fmt.Errorf("%s: %w", name, err)
		}
		*f.to = n
	}
	return c, nil
}

// labCounter returns the status counter called name of the node whose
// data directory is data.
func labCounter(data, name string) (uint64, error) {
	st, err := queryStatus(data, false)
	if err != nil {
		return 0, err
	}
	for _, v := range st.Counters {
		if v.Name == name {
			return strconv.ParseUint(v.Value, 10, 64)
		}
	}
	return 0, fmt.Errorf("no counter %q in the status", name)
}

// labBenchBinary is darkmatterBinary for a benchmark: the same build,
// shared with the tests.
func labBenchBinary(b *testing.B) string {
	b.Helper()
	if testing.Short() {
		b.Skip("builds and runs the binary; skipped in -short mode")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		b.Skip("no go tool on PATH")
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "darkmatter-cmd-test-")
		if buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "darkmatter")
		if out, err := exec.Command(gobin, "build", "-o", buildBin, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		b.Fatal(buildErr)
	}
	return buildBin
}

// labBenchRuns is how many nat connect processes BenchmarkLabPunch runs
// per NAT pair and iteration.
const labBenchRuns = 10

// BenchmarkLabPunch runs labBenchRuns fresh nat connect processes per
// iteration from behind router B to the relay behind router A, for each
// NAT pair, and reports the share of runs that punched a direct path
// (direct%) and the median time nat connect took to the direct link
// (ms-to-direct, successes only; 0 when none). One iteration is enough:
//
//	DARKMATTER_NATLAB=require go test -run XXX -bench BenchmarkLabPunch -benchtime 1x ./cmd/darkmatter/
func BenchmarkLabPunch(b *testing.B) {
	for _, pair := range labNATPairs {
		b.Run(labPairName(pair.a, pair.b), func(b *testing.B) {
			l := natlab.New(b, natlab.Options{A: pair.a, B: pair.b})
			s := startLabPunch(b, l, labBenchBinary(b))
			var direct []time.Duration
			var runs int
			var took time.Duration
			b.ResetTimer()
			for range b.N {
				for range labBenchRuns {
					c := s.connect(b, 10*time.Second, 30*time.Second)
					runs++
					took += c.took
					if c.direct.IsValid() {
						direct = append(direct, c.after)
					} else if !strings.Contains(c.out, labPunchFailed) {
						b.Fatalf("nat connect says neither a direct path nor a failed punch:\n%s", c.out)
					}
				}
			}
			b.StopTimer()
			slices.Sort(direct)
			var median time.Duration
			if len(direct) > 0 {
				median = direct[len(direct)/2]
			}
			b.ReportMetric(100*float64(len(direct))/float64(runs), "direct%")
			b.ReportMetric(float64(median)/float64(time.Millisecond), "ms-to-direct")
			b.Logf("%s: %d/%d punched, median %v to the direct link, %v per nat connect",
				labPairName(pair.a, pair.b), len(direct), runs, median, (took / time.Duration(runs)).Round(time.Millisecond))
		})
	}
}
