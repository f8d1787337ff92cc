package overlay

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/circuit/exitpolicy"
	"github.com/darkmatter/darkmatter/internal/safelog"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
	"github.com/darkmatter/darkmatter/overlay/transport"
	"github.com/darkmatter/darkmatter/overlay/transport/memnet"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) { removeCompileCache() }))
}

// harness is a small network: relays (all exits accepting everything), a
// client bootstrapped from relay 0 only, and a target server.
type harness struct {
	t       testing.TB
	kind    string // "mem" or "tcp"
	mem     *memnet.Network
	relays  []*Node
	hosts   []string // relay host IPs (mem)
	client  *Node
	target  *targetServer
	cliHost string
}

func newHarness(t testing.TB, kind string, nRelays int) *harness {
	t.Helper()
	return newHarnessLog(t, kind, nRelays, nil)
}

// newHarnessLog is newHarness with every node logging to logf.
func newHarnessLog(t testing.TB, kind string, nRelays int, logf safelog.Logf) *harness {
	t.Helper()
	return newHarnessWith(t, kind, nRelays, func(c *Config) { c.Logf = logf })
}

// newHarnessWith is newHarness with opt applied to every node's Config.
func newHarnessWith(t testing.TB, kind string, nRelays int, opt func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, kind: kind}
	if kind == "mem" {
		h.mem = &memnet.Network{}
		h.cliHost = "10.200.0.1"
	}
	h.target = h.startTarget()
	var boot []descriptor.Bootstrap
	for i := 0; i < nRelays; i++ {
		// Every relay of the test network has a loopback or private
		// address (10.x on memnet).
		// Relays gossip often: on loopback TCP every relay shares one
		// address, so announces beyond the handshakes in flight allowed
		// per address are refused, and gossip repairs that.
		cfg := Config{Network: "test-" + kind, Listen: []string{"127.0.0.1:0"}, AllowSameSubnet: kind == "tcp",
			AllowPrivateAddrs: true, Gossip: 500 * time.Millisecond}
		exit := &circuit.ExitConfig{Policy: exitpolicy.AcceptAll(), ConnectTimeout: 5 * time.Second}
		if kind == "mem" {
			ip := fmt.Sprintf("10.%d.0.1", i+1)
			host := h.mem.Host(ip)
			h.hosts = append(h.hosts, ip)
			cfg.Transports = transport.Registry{memnet.Scheme: host}
			cfg.Listen = []string{memnet.Scheme + "://" + ip + ":7000"}
			exit.Dial = func(ctx context.Context, _, addr string) (net.Conn, error) { return host.Dial(ctx, addr) }
		}
		exit.Resolve = func(ctx context.Context, name string) ([]netip.Addr, error) {
			if name == "target.test" {
				host, _, _ := net.SplitHostPort(h.target.addr)
				return []netip.Addr{netip.MustParseAddr(host)}, nil
			}
			return nil, fmt.Errorf("no such host")
		}
		cfg.Exit = exit
		if len(boot) > 0 {
			cfg.Bootstrap = boot[:1]
		}
		opt(&cfg)
		n, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		h.relays = append(h.relays, n)
		if err := n.Start(ctxT(t)); err != nil {
			h.close()
			t.Fatal(err)
		}
		boot = append(boot, n.Bootstrap())
	}
	// Relays announce themselves to the relays they know at start (relay
	// 0 knows all of them); wait until every relay knows every relay, so
	// that each can extend to any other.
	waitFor(t, func() bool {
		for _, r := range h.relays {
			if len(r.Relays()) != nRelays {
				return false
			}
		}
		return true
	}, "every relay knows every relay")
	// No preemptive circuits unless opt asks: tests count the circuits
	// the client opens.
	ccfg := Config{Network: "test-" + kind, Bootstrap: boot[:1], AllowSameSubnet: kind == "tcp", Preemptive: -1}
	if kind == "mem" {
		ccfg.Transports = transport.Registry{memnet.Scheme: h.mem.Host(h.cliHost)}
	}
	opt(&ccfg)
	c, err := New(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	h.client = c
	if err := c.Start(ctxT(t)); err != nil {
		h.close()
		t.Fatal(err)
	}
	return h
}

func (h *harness) close() {
	if h.client != nil {
		h.client.Close()
	}
	for _, r := range h.relays {
		r.Close()
	}
	h.target.close()
}

func (h *harness) transport() transport.Transport {
	if h.mem != nil {
		return h.mem.Host("10.250.0.1")
	}
	return &transport.TCP{}
}

// targetServer: "D n\n" streams n pattern bytes; "E\n" echoes; it records
// every remote address it sees.
type targetServer struct {
	addr  string
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	peers []string
}

func (h *harness) startTarget() *targetServer {
	var ln net.Listener
	var err error
	if h.mem != nil {
		ln, err = h.mem.Host("10.250.0.1").Listen(":80")
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		h.t.Fatal(err)
	}
	return newTargetServer(ln)
}

// newTargetServer serves the target protocol (serveTarget) on ln, noting
// each connection's remote address.
func newTargetServer(ln net.Listener) *targetServer {
	s := &targetServer{addr: ln.Addr().String(), ln: ln}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.peers = append(s.peers, c.RemoteAddr().String())
			s.mu.Unlock()
			s.wg.Go(func() {
				defer c.Close()
				serveTarget(c)
			})
		}
	})
	return s
}

func (s *targetServer) close() { s.ln.Close(); s.wg.Wait() }

func (s *targetServer) remotes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.peers...)
}

// patternBuf is the target's data, repeated: precomputed so the target is
// never the bottleneck of a throughput measurement.
var patternBuf = func() []byte {
	b := make([]byte, 1<<20)
	for i := range b {
		b[i] = byte(i*131 + i>>9)
	}
	return b
}()

func pattern(i int64) byte { return patternBuf[i%int64(len(patternBuf))] }

// writePattern writes bytes [0, n) of the repeated pattern.
func writePattern(w io.Writer, n int64) error {
	for off := int64(0); off < n; {
		start := off % int64(len(patternBuf))
		k := min(int64(len(patternBuf))-start, n-off)
		if _, err := w.Write(patternBuf[start : start+k]); err != nil {
			return err
		}
		off += k
	}
	return nil
}

func serveTarget(c net.Conn) {
	var line []byte
	b := make([]byte, 1)
	for {
		if _, err := c.Read(b); err != nil {
			return
		}
		if b[0] == '\n' {
			break
		}
		line = append(line, b[0])
		if len(line) > 64 {
			return
		}
	}
	f := strings.Fields(string(line))
	if len(f) == 0 {
		return
	}
	switch f[0] {
	case "E":
		io.Copy(c, c)
	case "D":
		var n int64
		fmt.Sscan(f[1], &n)
		if writePattern(c, n) != nil {
			return
		}
		io.Copy(io.Discard, c)
	}
}

func patternSum(n int64) [32]byte {
	h := sha256.New()
	writePattern(h, n)
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func waitFor(t testing.TB, f func() bool, what string) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if f() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for: %s", what)
}

func (h *harness) relayByIdentity(st net.Conn, hop int) *Node {
	cc := st.(*circuit.Stream).Circuit()
	id := cc.Hops()[hop].Identity
	for _, r := range h.relays {
		if r.keys.Identity.Public() == id {
			return r
		}
	}
	h.t.Fatalf("hop %d is no relay of ours", hop)
	return nil
}
