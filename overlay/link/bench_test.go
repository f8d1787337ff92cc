package link

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
)

// counter is a Handler for benchmarks: it counts and frees cells and wakes
// the sender every 64 cells.
type counter struct {
	want int64
	sent int64 // cells pump sent; only pump touches it
	got  atomic.Int64
	room chan struct{}
	done chan struct{}
}

func newCounter(want int) *counter {
	return &counter{want: int64(want), room: make(chan struct{}, 1), done: make(chan struct{})}
}

func (c *counter) HandleCell(l *Link, x *cell.Cell) {
	x.Free()
	n := c.got.Add(1)
	if n%64 == 0 {
		select {
		case c.room <- struct{}{}:
		default:
		}
	}
	if n == c.want {
		close(c.done)
	}
}

func (c *counter) Closed(l *Link, err error) {}

// pumpWindow is how many cells pump keeps in flight on its one circuit:
// two circuit windows, below DefaultMaxCircuitQueue as an honest
// circuit's traffic is.
const pumpWindow = 2 * 512

// pump sends n RELAY cells on circuit 1 of l with at most pumpWindow in
// flight. It does not allocate beyond the cells themselves.
func (c *counter) pump(tb testing.TB, l *Link, n int) {
	for range n {
		for c.sent-c.got.Load() >= pumpWindow {
			select {
			case <-c.room:
			case <-l.Done():
				tb.Fatalf("link closed: %v", l.Err())
			}
		}
		if err := l.Send(cell.New(1, cell.CmdRelay)); err != nil {
			tb.Fatal(err)
		}
		c.sent++
	}
}

// counterPair is a link whose server side counts; want is the count that
// closes c.done. cliCfg may be nil.
func counterPair(tb testing.TB, listen func(testing.TB) (net.Listener, func(context.Context) (net.Conn, error)),
	cliCfg *Config, want int) (*Link, *counter) {
	c := newCounter(want)
	ln, dial := listen(tb)
	defer ln.Close()
	srvKey := newKey(tb)
	cli, srv, err1, err2 := dialBoth(ln, dial, cliCfg, &Config{Static: srvKey}, srvKey.Public(), nil, c)
	if err1 != nil || err2 != nil {
		tb.Fatal(err1, err2)
	}
	tb.Cleanup(func() {
		cli.Close()
		srv.Close()
	})
	return cli, c
}

// suites are the cipher suites the benchmarks compare. AESGCM is skipped
// on a machine without hardware AES, where no node would use it.
var suites = []Suite{SuiteChaChaPoly, SuiteAESGCM}

// BenchmarkLinkThroughput moves cells one way over one link, per network
// and suite, so one run compares ChaChaPoly (before) with AESGCM (after).
func BenchmarkLinkThroughput(b *testing.B) {
	for _, nw := range networks {
		b.Run(nw.name, func(b *testing.B) {
			for _, suite := range suites {
				b.Run(suite.String(), func(b *testing.B) {
					if suite == SuiteAESGCM && !HardwareAES() {
						b.Skip("no hardware AES")
					}
					const warm = 4096
					cli, c := counterPair(b, nw.listen, &Config{Suite: suite}, warm+b.N)
					if cli.Suite() != suite {
						b.Fatalf("suite %v", cli.Suite())
					}
					c.pump(b, cli, warm)
					b.ReportAllocs()
					b.SetBytes(cell.Size)
					b.ResetTimer()
					c.pump(b, cli, b.N)
					<-c.done
					b.StopTimer()
					st := cli.Stats()
					b.ReportMetric(float64(st.CellsSent)/float64(st.Writes), "cells/write")
				})
			}
		})
	}
}

// BenchmarkTransportCipher is one seal and one open of a full message,
// the link's crypto per 16 cells, per suite.
func BenchmarkTransportCipher(b *testing.B) {
	for _, suite := range suites {
		b.Run(suite.String(), func(b *testing.B) {
			x, _ := newTransportCipher(suite, [32]byte{1}, 0)
			y, _ := newTransportCipher(suite, [32]byte{1}, 0)
			buf := make([]byte, MaxMessageLen-TagLen, MaxMessageLen)
			b.ReportAllocs()
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				m, err := x.seal(buf[:MaxMessageLen-TagLen], 0)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := y.open(m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkHandshake(b *testing.B) {
	srvKey := newKey(b)
	srvCfg := &Config{Static: srvKey, Hello: make([]byte, 1000)}
	ln, dial := memnetListen(b)
	defer ln.Close()
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		cli, srv, err1, err2 := dialBoth(ln, dial, nil, srvCfg, srvKey.Public(), nil, nil)
		if err1 != nil || err2 != nil {
			b.Fatal(err1, err2)
		}
		cli.Close()
		srv.Close()
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/float64(b.N), "µs/handshake")
}

// BenchmarkHandshakeCrypto is the sans-IO handshake alone.
func BenchmarkHandshakeCrypto(b *testing.B) {
	s, _ := (&Config{Static: newKey(b)}).settings()
	cs, _ := (&Config{}).settings()
	b.ReportAllocs()
	for b.Loop() {
		ini, msg1, err := startInitiator(cs, cs.preamble(), s.static.Public())
		if err != nil {
			b.Fatal(err)
		}
		_, msg2, err := respond(s, cs.preamble(), msg1)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ini.finish(msg2, s.static.Public()); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSteadyStateAllocs checks that moving cells over an established link
// does not allocate (cells come from the pool, buffers are reused), in
// both suites, also while the link rekeys every 64 messages (a rekey
// allocates only its new AEAD).
func TestSteadyStateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	for _, suite := range suites {
		for _, rekey := range []int{0, 64} {
			t.Run(fmt.Sprintf("%v/rekey=%d", suite, rekey), func(t *testing.T) {
				const warm, n = 20000, 50000
				cli, c := counterPair(t, memnetListen, &Config{Suite: suite, RekeyMessages: rekey, hardwareAES: hw(true)}, warm+n)
				c.pump(t, cli, warm)
				for c.got.Load() < warm {
					time.Sleep(time.Millisecond)
				}
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				c.pump(t, cli, n)
				<-c.done
				runtime.ReadMemStats(&after)
				perCell := float64(after.Mallocs-before.Mallocs) / n
				t.Logf("%.4f allocations per cell (%d in all, %d rekeys)", perCell, after.Mallocs-before.Mallocs, cli.Stats().RekeysSent)
				if perCell > 0.02 {
					t.Errorf("%.4f allocations per cell, want about 0", perCell)
				}
			})
		}
	}
}

// BenchmarkIdleLinkMemory reports the heap an idle link keeps after it has
// carried traffic: read buffers are borrowed only while data flows.
func BenchmarkIdleLinkMemory(b *testing.B) {
	const links = 100
	var before, after runtime.MemStats
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&before)
		var pairs []*pair
		srvKey := newKey(b)
		var got sync.WaitGroup
		got.Add(links * 32)
		count := func(l *Link, c *cell.Cell) { c.Free(); got.Done() }
		for i := 0; i < links; i++ {
			ln, dial := memnetListen(b)
			p, err := dialPair(ln, dial, &Config{}, &Config{Static: srvKey}, nil, newHandler(count))
			ln.Close()
			if err != nil {
				b.Fatal(err)
			}
			for j := 0; j < 32; j++ { // some traffic, then idle
				p.cli.Send(cell.New(1, cell.CmdRelay))
			}
			pairs = append(pairs, p)
		}
		got.Wait()
		time.Sleep(50 * time.Millisecond)
		runtime.GC()
		runtime.GC() // pooled buffers leave the pools' victim caches
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/(2*links), "heap-B/link")
		for _, p := range pairs {
			p.cli.Close()
			p.srv.Close()
		}
		b.StartTimer()
	}
}
