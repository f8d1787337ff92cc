package main

import (
	"bufio"
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/safelog"
	"github.com/darkmatter/darkmatter/overlay"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
	"github.com/urfave/cli/v2"
)

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "measure direct loopback TCP, a 3-hop circuit and a hidden service (6 hops) in one run (throughput, time to first byte, new rendezvous, publish to first fetch, circuit build, relay memory)",
		Flags: append(commonFlags(),
			&cli.IntFlag{Name: "mib", Usage: "MiB per bulk transfer", Value: 64},
			&cli.IntFlag{Name: "builds", Usage: "circuits to build for the build-time median", Value: 20},
			&cli.IntFlag{Name: "ttfb", Usage: "streams for the time-to-first-byte median", Value: 20},
			&cli.IntFlag{Name: "memory-circuits", Usage: "idle circuits for the relay memory measurement (0: skip)", Value: 10000},
			&cli.StringFlag{Name: "cpuprofile", Usage: "write a CPU profile of the circuit transfers to this file"},
		),
		Action: func(c *cli.Context) error {
			_, debug, err := logger(c)
			if err != nil {
				return err
			}
			ctx, stop := signalContext(c.Context)
			defer stop()
			return runBench(ctx, c, debug)
		},
	}
}

func runBench(ctx context.Context, c *cli.Context, debug func(string, ...any)) error {
	size := int64(c.Int("mib")) << 20
	srv, err := startSource(size)
	if err != nil {
		return err
	}
	defer srv.Close()
	fmt.Printf("darkmatter bench: %d MiB bulk (median of %d runs), loopback TCP, GOMAXPROCS=%d\n", size>>20, benchRuns, runtime.GOMAXPROCS(0))

	directDial := func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", srv.Addr)
	}
	quiet := func(string, ...any) {}
	tn, err := startTestnet(ctx, testnetOptions{Network: c.String("network") + "-bench", Relays: 5, Info: quiet, Debug: debug})
	if err != nil {
		return err
	}
	defer tn.Close()
	circuitDial := func(ctx context.Context) (net.Conn, error) {
		return tn.Client.DialStream(ctx, srv.Addr, "bench")
	}
	directTTFB, err := checkAndTTFB(ctx, directDial, srv, size, c.Int("ttfb"))
	if err != nil {
		return fmt.Errorf("direct: %w", err)
	}
	circTTFB, err := checkAndTTFB(ctx, circuitDial, srv, size, c.Int("ttfb"))
	if err != nil {
		return fmt.Errorf("3-hop: %w", err)
	}
	hs, err := startBenchService(ctx, tn, srv.Addr, debug)
	if err != nil {
		return fmt.Errorf("hidden service: %w", err)
	}
	defer hs.Close()
	hsDial := func(ctx context.Context) (net.Conn, error) {
		return tn.Client.DialStream(ctx, hs.target, "bench-hs")
	}
	hsTTFB, err := checkAndTTFB(ctx, hsDial, srv, size, c.Int("ttfb"))
	if err != nil {
		return fmt.Errorf("hidden service: %w", err)
	}
	rendTTFB, err := newRendezvousTTFB(ctx, tn.Client, hs.target, c.Int("ttfb"))
	if err != nil {
		return fmt.Errorf("hidden service: %w", err)
	}
	if p := c.String("cpuprofile"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(f)
		defer f.Close()
	}
	// Bulk rates: direct, 3-hop and hidden-service runs alternate so that
	// all see the same machine; each rate is the median of its runs.
	var direct, circ, hidden rates
	var dd, du, cd, cu, hd, hu []float64
	for i := 0; i < benchRuns; i++ {
		for _, m := range []struct {
			dial     func(context.Context) (net.Conn, error)
			down, up *[]float64
			what     string
		}{{directDial, &dd, &du, "direct"}, {circuitDial, &cd, &cu, "3-hop"}, {hsDial, &hd, &hu, "hidden service"}} {
			d, err := download(ctx, m.dial, size)
			if err != nil {
				return fmt.Errorf("%s: %w", m.what, err)
			}
			u, err := upload(ctx, m.dial, size)
			if err != nil {
				return fmt.Errorf("%s: %w", m.what, err)
			}
			*m.down, *m.up = append(*m.down, d), append(*m.up, u)
		}
	}
	direct.down, direct.up = median(dd), median(du)
	circ.down, circ.up = median(cd), median(cu)
	hidden.down, hidden.up = median(hd), median(hu)
	pprof.StopCPUProfile()
	builds, err := measureBuilds(ctx, tn.Client, c.Int("builds"))
	if err != nil {
		return err
	}

	fmt.Printf("\n%-28s %12s %12s %12s\n", "", "direct TCP", "3-hop", "hidden (6)")
	fmt.Printf("%-28s %12.1f %12.1f %12.1f   3-hop/direct %.1f%%, hidden/3-hop %.1f%%\n", "bulk download (MB/s)", direct.down, circ.down, hidden.down, 100*circ.down/direct.down, 100*hidden.down/circ.down)
	fmt.Printf("%-28s %12.1f %12.1f %12.1f   3-hop/direct %.1f%%, hidden/3-hop %.1f%%\n", "bulk upload (MB/s)", direct.up, circ.up, hidden.up, 100*circ.up/direct.up, 100*hidden.up/circ.up)
	fmt.Printf("%-28s %12s %12s %12s\n", "time to first byte (median)", fmtDur(directTTFB), fmtDur(circTTFB), fmtDur(hsTTFB))
	fmt.Printf("%-28s %12s %12s %12s   (median of %d: descriptor cached, new introduction and rendezvous each)\n", "new rendezvous, first byte", "-", "-", fmtDur(rendTTFB), c.Int("ttfb"))
	fmt.Printf("%-28s %12s %12s %12s   (ListenService to a fresh client's first byte)\n", "publish to first fetch", "-", "-", fmtDur(hs.firstFetch))
	fmt.Printf("%-28s %12s %12s   (median of %d, min %s, max %s)\n", "circuit build", "-", fmtDur(median(builds)), len(builds), fmtDur(slices.Min(builds)), fmtDur(slices.Max(builds)))

	if n := c.Int("memory-circuits"); n > 0 {
		per, err := measureRelayMemory(ctx, c.String("network")+"-benchmem", n)
		if err != nil {
			return fmt.Errorf("relay memory: %w", err)
		}
		fmt.Printf("%-28s %12s %12s   (%d idle circuits, separate relay process, RSS delta)\n", "relay memory per circuit", "-", fmt.Sprintf("%.0f B", per), n)
	}
	return nil
}

// benchService is a hidden service in front of the bench source, published
// by a node of its own.
type benchService struct {
	node       *overlay.Node
	svc        net.Listener
	fw         *forwarder
	target     string // "<addr>.dark:80"
	firstFetch time.Duration
}

// startBenchService publishes the source as a hidden service and measures
// the time from ListenService to the first byte a fresh client gets.
func startBenchService(ctx context.Context, tn *testnet, source string, debug safelog.Logf) (*benchService, error) {
	mk := func() (*overlay.Node, error) {
		n, err := overlay.New(overlay.Config{Network: tn.network, Bootstrap: tn.boot[:1], AllowSameSubnet: true,
			GuardMinAge: -1, DHTMinAge: -1, Logf: debug})
		if err != nil {
			return nil, err
		}
		if err := n.Start(ctx); err != nil {
			n.Close()
			return nil, err
		}
		if err := n.Ready(ctx); err != nil {
			n.Close()
			return nil, err
		}
		return n, nil
	}
	node, err := mk()
	if err != nil {
		return nil, err
	}
	fresh, err := mk() // a client that has seen nothing of the service
	if err != nil {
		node.Close()
		return nil, err
	}
	defer fresh.Close()
	key, err := keys.GenerateService(nil)
	if err != nil {
		node.Close()
		return nil, err
	}
	b := &benchService{node: node, target: key.Public().Address() + ":80"}
	start := time.Now()
	svc, err := node.ListenService(ctx, overlay.ServiceConfig{Key: key, Ports: []uint16{80}})
	if err != nil {
		node.Close()
		return nil, err
	}
	b.svc = svc
	b.fw = &forwarder{targets: map[uint16]string{80: source}, logf: debug}
	b.fw.wg.Go(func() { b.fw.serve(svc) })
	conn, err := fresh.DialStream(ctx, b.target, "")
	if err == nil {
		io.WriteString(conn, "P\n")
		_, err = io.ReadFull(conn, make([]byte, 1))
		conn.Close()
	}
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("first fetch: %w", err)
	}
	b.firstFetch = time.Since(start)
	return b, nil
}

func (b *benchService) Close() error {
	b.svc.Close()
	b.fw.wait()
	return b.node.Close()
}

// newRendezvousTTFB returns the median time to first byte of n streams,
// each on a new rendezvous (a new isolation key), the descriptor cached.
func newRendezvousTTFB(ctx context.Context, n *overlay.Node, target string, count int) (time.Duration, error) {
	var out []time.Duration
	for i := 0; i < count; i++ {
		start := time.Now()
		conn, err := n.DialStream(ctx, target, fmt.Sprintf("bench-rendezvous-%d", i))
		if err != nil {
			return 0, err
		}
		io.WriteString(conn, "P\n")
		_, err = io.ReadFull(conn, make([]byte, 1))
		conn.Close()
		if err != nil {
			return 0, err
		}
		out = append(out, time.Since(start))
	}
	return median(out), nil
}

type rates struct{ down, up float64 }

// checkAndTTFB warms a dialer up (building the circuit), checks that a
// download arrives byte-identical and returns the median time to first byte
// of n fresh streams.
func checkAndTTFB(ctx context.Context, dial func(context.Context) (net.Conn, error), srv *source, size int64, n int) (time.Duration, error) {
	if conn, err := dial(ctx); err == nil {
		io.WriteString(conn, "P\n")
		io.ReadFull(conn, make([]byte, 1))
		conn.Close()
	} else {
		return 0, err
	}
	// Integrity, untimed: the same transfer must arrive byte-identical.
	conn, err := dial(ctx)
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(conn, "D %d\n", size)
	h := sha256.New()
	got, err := io.CopyBuffer(h, io.LimitReader(conn, size), make([]byte, 256<<10))
	conn.Close()
	if err != nil || got != size || string(h.Sum(nil)) != string(srv.sum) {
		return 0, fmt.Errorf("download corrupted: %d of %d bytes, SHA-256 match %v, %v", got, size, string(h.Sum(nil)) == string(srv.sum), err)
	}
	var ttfb []time.Duration
	for i := 0; i < n; i++ {
		start := time.Now()
		conn, err := dial(ctx)
		if err != nil {
			return 0, err
		}
		io.WriteString(conn, "P\n")
		if _, err := io.ReadFull(conn, make([]byte, 1)); err != nil {
			conn.Close()
			return 0, err
		}
		ttfb = append(ttfb, time.Since(start))
		conn.Close()
	}
	return median(ttfb), nil
}

// benchRuns is how many times each bulk transfer runs.
const benchRuns = 5

// download returns MB/s for size bytes from the source.
func download(ctx context.Context, dial func(context.Context) (net.Conn, error), size int64) (float64, error) {
	conn, err := dial(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	start := time.Now()
	fmt.Fprintf(conn, "D %d\n", size)
	got, err := io.CopyBuffer(io.Discard, io.LimitReader(conn, size), make([]byte, 256<<10))
	if err != nil || got != size {
		return 0, fmt.Errorf("download: %d of %d bytes: %v", got, size, err)
	}
	return float64(size) / time.Since(start).Seconds() / 1e6, nil
}

// upload returns MB/s for size bytes to the source, acknowledged by it.
func upload(ctx context.Context, dial func(context.Context) (net.Conn, error), size int64) (float64, error) {
	conn, err := dial(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	start := time.Now()
	fmt.Fprintf(conn, "U %d\n", size)
	if _, err := io.CopyBuffer(conn, io.LimitReader(zeroReader{}, size), make([]byte, 256<<10)); err != nil {
		return 0, fmt.Errorf("upload: %w", err)
	}
	if _, err := io.ReadFull(conn, make([]byte, 1)); err != nil {
		return 0, fmt.Errorf("upload ack: %w", err)
	}
	return float64(size) / time.Since(start).Seconds() / 1e6, nil
}

func measureBuilds(ctx context.Context, n *overlay.Node, count int) ([]time.Duration, error) {
	var out []time.Duration
	for i := 0; i < count; i++ {
		start := time.Now()
		cc, err := n.Manager().Build(ctx)
		if err != nil {
			return nil, fmt.Errorf("build: %w", err)
		}
		out = append(out, time.Since(start))
		cc.Close()
	}
	return out, nil
}

// source is a loopback server: "D n" sends n bytes of a fixed pattern, "U n"
// reads n bytes and answers one byte, "P" answers one byte.
type source struct {
	Addr string
	ln   net.Listener
	data []byte
	sum  []byte
}

func startSource(size int64) (*source, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &source{Addr: ln.Addr().String(), ln: ln, data: make([]byte, 1<<20)}
	for i := range s.data {
		s.data[i] = byte(i*7 + i>>8)
	}
	h := sha256.New()
	for left := size; left > 0; left -= int64(len(s.data)) {
		h.Write(s.data[:min(left, int64(len(s.data)))])
	}
	s.sum = h.Sum(nil)
	go s.serve()
	return s, nil
}

func (s *source) serve() {
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			br := bufio.NewReader(conn)
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			f := strings.Fields(line)
			if len(f) == 0 {
				return
			}
			var n int64
			if len(f) > 1 {
				n, _ = strconv.ParseInt(f[1], 10, 64)
			}
			switch f[0] {
			case "P":
				conn.Write([]byte{1})
			case "D":
				for left := n; left > 0; left -= int64(len(s.data)) {
					if _, err := conn.Write(s.data[:min(left, int64(len(s.data)))]); err != nil {
						return
					}
				}
				io.Copy(io.Discard, br) // until the client closes
			case "U":
				io.CopyN(io.Discard, br, n)
				conn.Write([]byte{1})
				io.Copy(io.Discard, br)
			}
		}()
	}
}

func (s *source) Close() error { return s.ln.Close() }

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// measureRelayMemory starts a relay in a separate process, builds n one-hop
// circuits to it and reports the growth of its resident set per circuit.
func measureRelayMemory(ctx context.Context, network string, n int) (float64, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	dir, err := os.MkdirTemp("", "darkmatter-benchmem")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	// One client builds every circuit over one link: lift the relay's
	// per-link, per-address and rate limits, which exist to stop exactly
	// that from a stranger.
	cmd := exec.CommandContext(ctx, exe, "relay", "--listen", "127.0.0.1:0", "--data", dir, "--network", network,
		"--create-rate", "1e6", "--create-burst", strconv.Itoa(n+16), "--max-circuits-per-link", strconv.Itoa(n+16),
		"--max-circuits-per-ip", strconv.Itoa(n+16), "--max-circuits", strconv.Itoa(n+16))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	re := regexp.MustCompile(`bootstrap: (\S+)`)
	sc := bufio.NewScanner(stderr)
	var boot string
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			boot = m[1]
			break
		}
	}
	go io.Copy(io.Discard, stderr)
	if boot == "" {
		return 0, errors.New("relay did not print its bootstrap line")
	}
	b, err := descriptor.ParseBootstrap(boot)
	if err != nil {
		return 0, err
	}
	client, err := overlay.New(overlay.Config{Network: network, Bootstrap: []descriptor.Bootstrap{b}, PathLen: 1, AllowSameSubnet: true,
		MaxCircuitsPerLink: n + 16})
	if err != nil {
		return 0, err
	}
	defer client.Close()
	if err := client.Start(ctx); err != nil {
		return 0, err
	}
	// One circuit first so the link and the relay's pools exist.
	warm, err := client.Manager().BuildAny(ctx)
	if err != nil {
		return 0, err
	}
	defer warm.Close()
	time.Sleep(200 * time.Millisecond)
	before, err := rss(cmd.Process.Pid)
	if err != nil {
		return 0, err
	}
	for i := 0; i < n; i++ {
		cc, err := client.Manager().BuildAny(ctx)
		if err != nil {
			return 0, fmt.Errorf("circuit %d: %w", i, err)
		}
		defer cc.Close()
	}
	time.Sleep(500 * time.Millisecond)
	after, err := rss(cmd.Process.Pid)
	if err != nil {
		return 0, err
	}
	return float64(after-before) / float64(n), nil
}

// rss returns a process's resident set size in bytes (Linux).
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS")
}

// median returns the middle value of v (the upper one for an even count).
func median[T cmp.Ordered](v []T) T {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/1e3)
	default:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	}
}
