package hostile

import (
	"context"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/overlay/transport/memnet"
)

// flood sends CREATE cells on links as fast as the links take them, each on
// a new circuit ID, cycling through msgs (fresh handshakes first, then
// replays of them), until stop is closed.
type flood struct {
	links []*rawLink
	msgs  [][]byte
	sent  atomic.Int64
	stop  chan struct{}
	wg    sync.WaitGroup
}

func startFlood(links []*rawLink, msgs [][]byte) *flood {
	f := &flood{links: links, msgs: msgs, stop: make(chan struct{})}
	for li, rl := range links {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-f.stop:
					return
				default:
				}
				// Each link starts at its own share of the messages, so
				// that every message is fresh once before any is replayed.
				msg := msgs[(li*len(msgs)/len(links)+i)%len(msgs)]
				if rl.sendPaced(0x80000000|uint32(i+1), cell.CmdCreate, msg) != nil {
					return
				}
				f.sent.Add(1)
			}
		}()
	}
	return f
}

func (f *flood) end() {
	close(f.stop)
	f.wg.Wait()
}

// replies returns the CREATEs the relay answered with CREATED (accepted)
// and those it answered with DESTROY (refused), on all the flood's links.
func (f *flood) replies() (accepted, refused int64) {
	for _, rl := range f.links {
		accepted += rl.byCmd[cell.CmdCreated].Load()
		refused += rl.byCmd[cell.CmdDestroy].Load()
	}
	return accepted, refused
}

// settle waits until the replies stop changing.
func (f *flood) settle() {
	a, r := f.replies()
	last := a + r
	for i := 0; i < 100; i++ {
		time.Sleep(100 * time.Millisecond)
		a, r := f.replies()
		if a+r == last {
			return
		}
		last = a + r
	}
}

// peakSampler records the most goroutines the process had while it ran.
type peakSampler struct {
	peak atomic.Int64
	stop chan struct{}
	done chan struct{}
}

func samplePeak() *peakSampler {
	s := &peakSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			if g := int64(runtime.NumGoroutine()); g > s.peak.Load() {
				s.peak.Store(g)
			}
			select {
			case <-s.stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	return s
}

func (s *peakSampler) end() int {
	close(s.stop)
	<-s.done
	return int(s.peak.Load())
}

// probeBuilds builds a circuit through path k times with the probe peer
// and returns the slowest build; it fails the test if one fails or takes
// longer than limit.
func probeBuilds(t *testing.T, probe *peer, path []circuit.Hop, k int, limit time.Duration) time.Duration {
	t.Helper()
	var worst time.Duration
	for i := 0; i < k; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		start := time.Now()
		cc, err := probe.build(ctx, path...)
		d := time.Since(start)
		cancel()
		if err != nil {
			t.Fatalf("a legitimate circuit through the attacked relay: %v (after %v)", err, d.Round(time.Millisecond))
		}
		cc.Close()
		worst = max(worst, d)
	}
	return worst
}

// reasons lists the DESTROY reasons received on rl with their counts.
func reasons(rl *rawLink) map[byte]int64 {
	m := make(map[byte]int64)
	for r := range rl.destroys {
		if c := rl.destroys[r].Load(); c > 0 {
			m[byte(r)] = c
		}
	}
	return m
}

// sink is a listener that is no relay: it accepts connections, counts
// them and never answers (an open, silent port).
type sink struct {
	ln       net.Listener
	addr     string // with scheme
	accepted atomic.Int64
	wg       sync.WaitGroup

	// mu guards conns.
	mu    sync.Mutex
	conns []net.Conn
}

// newSink listens at hostport on memnet host ip, or on loopback TCP when
// the network runs over TCP (hostport's port then is random).
func (n *testNet) newSink(t testing.TB, ip, port string) *sink {
	var ln net.Listener
	var err error
	var addr string
	if n.mem != nil {
		ln, err = n.mem.Host(ip).Listen(net.JoinHostPort(ip, port))
		addr = memnet.Scheme + "://" + net.JoinHostPort(ip, port)
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err == nil {
			addr = "tcp://" + ln.Addr().String()
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{ln: ln, addr: addr}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
		}
	}()
	t.Cleanup(s.close)
	return s
}

// port returns the sink's port.
func (s *sink) port() string {
	_, p, _ := net.SplitHostPort(s.ln.Addr().String())
	return p
}

func (s *sink) close() {
	s.ln.Close()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
}
