package hostile

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/circuit/exitpolicy"
	"github.com/darkmatter/darkmatter/overlay"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
	"github.com/darkmatter/darkmatter/overlay/transport"
	"github.com/darkmatter/darkmatter/overlay/transport/memnet"
)

// kinds are the transports every suite test runs over, where it can.
var kinds = []string{"mem", "tcp"}

// Addresses of the memnet network. Relays, the client and the target have
// public-looking addresses so that a relay's rules on private and loopback
// addresses apply to what the attacker names; the attacker's victims (no
// relays) sit at the private and loopback addresses.
const (
	memClientIP = "13.0.0.1"
	memTargetIP = "12.34.0.1"
)

func memRelayIP(i int) string { return fmt.Sprintf("11.%d.0.1", i+1) }

// netConfig tunes a test network.
type netConfig struct {
	relays int // default 4
	// relay, if set, adjusts relay i's configuration (limits under test).
	relay func(i int, cfg *overlay.Config)
}

// testNet is a small network: relays (all exits accepting every target),
// a client bootstrapped from relay 0, and a target server.
type testNet struct {
	t      testing.TB
	kind   string
	mem    *memnet.Network // nil over TCP
	relays []*overlay.Node
	client *overlay.Node
	target *target
	legitN int
}

func newNet(t testing.TB, kind string, nc netConfig) *testNet {
	t.Helper()
	if nc.relays == 0 {
		nc.relays = 4
	}
	n := &testNet{t: t, kind: kind}
	if kind == "mem" {
		n.mem = &memnet.Network{}
	}
	t.Cleanup(n.close)
	n.target = n.startTarget()
	network := "hostile-" + kind
	var boot []descriptor.Bootstrap
	for i := 0; i < nc.relays; i++ {
		cfg := overlay.Config{
			Network:         network,
			Listen:          []string{"127.0.0.1:0"},
			AllowSameSubnet: kind == "tcp",
			// Loopback relays extend to loopback addresses.
			AllowPrivateAddrs: kind == "tcp",
			// Relays learn each other quickly: a relay whose announce was
			// refused (handshakes in flight from one address) gossips.
			Gossip: 500 * time.Millisecond,
		}
		exit := &circuit.ExitConfig{Policy: exitpolicy.AcceptAll(), ConnectTimeout: 5 * time.Second}
		if kind == "mem" {
			ip := memRelayIP(i)
			host := n.mem.Host(ip)
			cfg.Transports = transport.Registry{memnet.Scheme: host}
			cfg.Listen = []string{memnet.Scheme + "://" + ip + ":7000"}
			exit.Dial = func(ctx context.Context, _, addr string) (net.Conn, error) { return host.Dial(ctx, addr) }
		}
		exit.Resolve = func(ctx context.Context, name string) ([]netip.Addr, error) {
			if name == "target.test" {
				return []netip.Addr{n.target.addrPort().Addr()}, nil
			}
			return nil, fmt.Errorf("no such host")
		}
		cfg.Exit = exit
		if len(boot) > 0 {
			cfg.Bootstrap = boot[:1]
		}
		if nc.relay != nil {
			nc.relay(i, &cfg)
		}
		var r *overlay.Node
		err := labelled(relayLabel(i), func() error {
			var err error
			if r, err = overlay.New(cfg); err != nil {
				return err
			}
			n.relays = append(n.relays, r)
			return r.Start(ctxT(t))
		})
		if err != nil {
			t.Fatalf("relay %d: %v", i, err)
		}
		boot = append(boot, r.Bootstrap())
	}
	waitFor(t, 10*time.Second, "every relay knows every relay", func() bool {
		for _, r := range n.relays {
			if len(r.Relays()) != nc.relays {
				return false
			}
		}
		return true
	})
	// No preemptive circuits: tests count the circuits the client opens.
	ccfg := overlay.Config{Network: network, Bootstrap: boot[:1], AllowSameSubnet: kind == "tcp", Preemptive: -1}
	if kind == "mem" {
		ccfg.Transports = transport.Registry{memnet.Scheme: n.mem.Host(memClientIP)}
	}
	err := labelled("client", func() error {
		c, err := overlay.New(ccfg)
		if err != nil {
			return err
		}
		n.client = c
		return c.Start(ctxT(t))
	})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	return n
}

func relayLabel(i int) string { return fmt.Sprintf("relay%d", i) }

func (n *testNet) close() {
	if n.client != nil {
		n.client.Close()
	}
	for _, r := range n.relays {
		r.Close()
	}
	if n.target != nil {
		n.target.close()
	}
}

// host returns a transport dialling from ip (memnet), or TCP.
func (n *testNet) host(ip string) transport.Transport {
	if n.mem != nil {
		return n.mem.Host(ip)
	}
	return &transport.TCP{}
}

// relayAddr returns relay r's link address with its scheme.
func (n *testNet) relayAddr(r *overlay.Node) string { return r.Descriptor().Addrs[0] }

// legit checks that the legitimate client still works: a stream on a new
// circuit (a fresh isolation key) echoes a few bytes within limit. It
// returns how long that took.
func (n *testNet) legit(t testing.TB, limit time.Duration) time.Duration {
	t.Helper()
	n.legitN++
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	st, err := n.client.DialStream(ctx, n.target.addr, fmt.Sprintf("legit-%d", n.legitN))
	if err != nil {
		t.Fatalf("legitimate client: %v (after %v)", err, time.Since(start).Round(time.Millisecond))
	}
	defer st.Close()
	st.SetDeadline(start.Add(limit))
	if _, err := io.WriteString(st, "E\nping"); err != nil {
		t.Fatalf("legitimate client: write: %v", err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(st, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("legitimate client: echo %q: %v (after %v)", buf, err, time.Since(start).Round(time.Millisecond))
	}
	return time.Since(start)
}

// target is the server behind the exits. Commands, one line each:
// "E" echoes; "D n" sends n bytes; "S" never reads nor writes (a target
// that stopped reading) until the connection is closed.
type target struct {
	addr string
	ln   net.Listener
	wg   sync.WaitGroup

	// mu guards the following.
	mu    sync.Mutex
	conns map[net.Conn]bool
	sinks int // connections in "S" mode
}

func (n *testNet) startTarget() *target {
	var ln net.Listener
	var err error
	if n.mem != nil {
		ln, err = n.mem.Host(memTargetIP).Listen(":80")
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		n.t.Fatal(err)
	}
	s := &target{addr: ln.Addr().String(), ln: ln, conns: make(map[net.Conn]bool)}
	s.wg.Add(1)
	go pprof.Do(context.Background(), pprof.Labels("node", "target"), func(context.Context) {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = true
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c)
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
		}
	})
	return s
}

func (s *target) addrPort() netip.AddrPort { return netip.MustParseAddrPort(s.addr) }

func (s *target) serve(c net.Conn) {
	r := bufio.NewReaderSize(c, 64)
	line, err := r.ReadString('\n')
	if err != nil {
		return
	}
	f := strings.Fields(line)
	if len(f) == 0 {
		return
	}
	switch f[0] {
	case "E":
		io.Copy(c, r)
	case "D":
		size, _ := strconv.ParseInt(f[1], 10, 64)
		buf := bytes.Repeat([]byte("0123456789abcdef"), 8<<10)
		for size > 0 {
			k, err := c.Write(buf[:min(int64(len(buf)), size)])
			if err != nil {
				return
			}
			size -= int64(k)
		}
		io.Copy(io.Discard, r)
	case "S":
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetReadBuffer(1024) // a small window, so the exit's writes block soon
		}
		s.mu.Lock()
		s.sinks++
		s.mu.Unlock()
		// Never read, never write: hold the connection until dropAll.
		for {
			time.Sleep(20 * time.Millisecond)
			s.mu.Lock()
			open := s.conns[c]
			s.mu.Unlock()
			if !open {
				return
			}
		}
	}
}

// openConns returns how many target connections are open.
func (s *target) openConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// dropAll closes every target connection (unblocks an exit stuck on one).
func (s *target) dropAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
		delete(s.conns, c)
	}
}

func (s *target) close() {
	s.ln.Close()
	s.dropAll()
	s.wg.Wait()
}

// labelled runs f on a goroutine labelled node=name and waits for it: every
// goroutine f starts (and those they start) carries the label, so
// goroutines() can count a node's goroutines.
func labelled(name string, f func() error) error {
	errc := make(chan error, 1)
	go pprof.Do(context.Background(), pprof.Labels("node", name), func(context.Context) {
		errc <- f()
	})
	return <-errc
}

// goroutines counts the live goroutines by their node label ("" for
// unlabelled ones).
func goroutines() map[string]int {
	var b bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&b, 1)
	out := make(map[string]int)
	sc := bufio.NewScanner(&b)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	count := 0
	pending := false
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, " @ 0x"); i > 0 {
			if pending {
				out[""] += count
			}
			count, _ = strconv.Atoi(line[:i])
			pending = true
			continue
		}
		if pending && strings.HasPrefix(line, "# labels: ") {
			out[labelValue(line, "node")] += count
			pending = false
		}
	}
	if pending {
		out[""] += count
	}
	return out
}

// labelValue returns key's value in a "# labels: {"k":"v", ...}" line.
func labelValue(line, key string) string {
	q := `"` + key + `":"`
	i := strings.Index(line, q)
	if i < 0 {
		return ""
	}
	rest := line[i+len(q):]
	if j := strings.IndexByte(rest, '"'); j >= 0 {
		return rest[:j]
	}
	return ""
}

// heap returns the bytes of live heap objects after a full collection
// (twice, so that sync.Pool's victim cache is emptied too). Live objects,
// not the spans in use (HeapInuse): freed cells leave spans partly used
// for a while, which is the allocator's business, not a relay's hold.
func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// usage is a node's resource use at one moment.
type usage struct {
	goroutines int    // the node's labelled goroutines
	heap       uint64 // the whole process's heap in use
	links      int
	circuits   int
}

func (n *testNet) usage(i int) usage {
	r := n.relays[i]
	return usage{goroutines: goroutines()[relayLabel(i)], heap: heap(), links: r.Links(), circuits: r.CircuitEnds()}
}

func (u usage) String() string {
	return fmt.Sprintf("%d goroutines, heap %.1f MiB, %d links, %d circuits", u.goroutines, mib(u.heap), u.links, u.circuits)
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// heapGrowth returns how much the heap grew from before to after (0 if it
// shrank).
func heapGrowth(before, after usage) uint64 {
	if after.heap < before.heap {
		return 0
	}
	return after.heap - before.heap
}

// closeClientCircuits closes the legitimate client's circuits, so that the
// next stream needs a new one.
func (n *testNet) closeClientCircuits() {
	for _, cc := range n.client.Manager().Open() {
		cc.Close()
	}
}

// quiesce closes the legitimate client's circuits and waits until no relay
// carries a circuit, so that what remains is the attack's.
func (n *testNet) quiesce(t testing.TB) {
	t.Helper()
	n.closeClientCircuits()
	waitFor(t, 10*time.Second, "the client's circuits to close", func() bool {
		for _, r := range n.relays {
			if r.CircuitEnds() > 0 {
				return false
			}
		}
		return true
	})
}

// baseline quiesces the network and returns relay i's usage.
func (n *testNet) baseline(t testing.TB, i int) usage {
	t.Helper()
	n.quiesce(t)
	return n.usage(i)
}

// waitFreed quiesces the network and waits until relay i is back near its
// baseline: no circuit, no more goroutines than slack above it (plus two
// for each link the legitimate client's circuits may have added between
// relays), as many links (likewise) and the heap within heapSlack of it.
func (n *testNet) waitFreed(t testing.TB, i int, base usage, slack int, heapSlack uint64) {
	t.Helper()
	n.quiesce(t)
	newLinks := len(n.relays)
	var u usage
	deadline := time.Now().Add(15 * time.Second)
	for {
		u = n.usage(i)
		if u.goroutines <= base.goroutines+slack+2*newLinks && u.links <= base.links+newLinks && u.circuits == 0 &&
			u.heap <= base.heap+heapSlack {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("relay %d did not free what the attack made it hold: %v, baseline %v", i, u, base)
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func waitFor(t testing.TB, limit time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
