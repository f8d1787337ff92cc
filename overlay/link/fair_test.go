package link

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/overlay/transport/memnet"
)

// Circuits of the fairness tests and benchmarks.
const (
	bulkCirc        = 1
	interactiveCirc = 2
)

// echoServer is the far end of the fairness tests: it counts and frees
// the bulk circuit's cells and sends every interactive cell straight back.
type echoServer struct {
	bulk atomic.Int64
	room chan struct{} // cap 1: another 64 bulk cells arrived
}

func (e *echoServer) HandleCell(l *Link, c *cell.Cell) {
	if c.Circ() == interactiveCirc {
		l.Send(c)
		return
	}
	c.Free()
	if e.bulk.Add(1)%64 == 0 {
		select {
		case e.room <- struct{}{}:
		default:
		}
	}
}

func (e *echoServer) Closed(*Link, error) {}

// echoClient receives the echoes.
type echoClient struct{ echo chan struct{} }

func (e *echoClient) HandleCell(l *Link, c *cell.Cell) {
	c.Free()
	e.echo <- struct{}{}
}

func (e *echoClient) Closed(*Link, error) {}

// rttLink is a link whose server echoes circuit 2 and sinks circuit 1.
type rttLink struct {
	cli, srvLink *Link
	srv          *echoServer
	echo         chan struct{}
}

func (r *rttLink) close() {
	r.cli.Close()
	r.srvLink.Close()
}

func newRTTLink(tb testing.TB, listen func(testing.TB) (net.Listener, func(context.Context) (net.Conn, error))) *rttLink {
	tb.Helper()
	ln, dial := listen(tb)
	defer ln.Close()
	srvKey := newKey(tb)
	r := &rttLink{srv: &echoServer{room: make(chan struct{}, 1)}, echo: make(chan struct{}, 1)}
	cli, srv, err1, err2 := dialBoth(ln, dial, nil, &Config{Static: srvKey}, srvKey.Public(), &echoClient{r.echo}, r.srv)
	if err1 != nil || err2 != nil {
		tb.Fatal(err1, err2)
	}
	r.cli, r.srvLink = cli, srv
	tb.Cleanup(r.close)
	return r
}

// roundTrip sends one interactive cell and waits for its echo.
func (r *rttLink) roundTrip(tb testing.TB) time.Duration {
	start := time.Now()
	if err := r.cli.Send(cell.New(interactiveCirc, cell.CmdRelay)); err != nil {
		tb.Fatal(err)
	}
	select {
	case <-r.echo:
	case <-r.cli.Done():
		tb.Fatalf("link closed: %v", r.cli.Err())
	case <-time.After(ioTimeout):
		tb.Fatal("no echo")
	}
	return time.Since(start)
}

// startBulk keeps the bulk circuit's queue full: like an honest circuit at
// its window, it keeps pumpWindow cells in flight, which fills the circuit
// queue up to what the transport and the writer do not hold. It returns a
// func that stops it and returns how many cells it sent.
func (r *rttLink) startBulk(tb testing.TB) (stop func() int64) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	var sent int64
	wg.Go(func() {
		for {
			for sent-r.srv.bulk.Load() >= pumpWindow {
				select {
				case <-r.srv.room:
				case <-quit:
					return
				case <-r.cli.Done():
					return
				}
			}
			if err := r.cli.Send(cell.New(bulkCirc, cell.CmdRelay)); err != nil {
				tb.Errorf("bulk Send: %v", err)
				return
			}
			sent++
		}
	})
	r.waitBacklog(tb)
	return func() int64 {
		close(quit)
		wg.Wait()
		return sent
	}
}

// waitBacklog waits until the bulk circuit has a backlog of at least half
// its window queued.
func (r *rttLink) waitBacklog(tb testing.TB) {
	deadline := time.Now().Add(ioTimeout)
	for r.cli.QueueLen() < pumpWindow/2 {
		if time.Now().After(deadline) {
			tb.Fatalf("no bulk backlog: %d cells queued", r.cli.QueueLen())
		}
		time.Sleep(20 * time.Microsecond)
	}
}

func median(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}

// TestInteractiveFairness: on one link, a bulk circuit keeps its queue
// full while an interactive circuit sends one cell at a time and waits for
// the echo. The link runs over a shaped path (10 MiB/s, 5 ms each way) in
// virtual time, so the numbers are exact, not noisy. The interactive round
// trip under load stays close to its idle value: the cell waits for one
// turn of the bulk circuit and the rest of the batch being written, not
// behind the bulk circuit's backlog (about 4 MiB, 400 ms at that rate,
// which is what a single FIFO queue made it wait).
func TestInteractiveFairness(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRTTLink(t, shapedListen(10<<20, 5*time.Millisecond))
		const n = 20
		idle := make([]time.Duration, n)
		for i := range idle {
			idle[i] = r.roundTrip(t)
		}
		stop := r.startBulk(t)
		backlog := r.cli.QueueLen()
		loaded := make([]time.Duration, n)
		for i := range loaded {
			loaded[i] = r.roundTrip(t)
			time.Sleep(time.Duration(i) * time.Millisecond) // arrive at different points of a batch
		}
		sent := stop()
		mi, ml, worst := median(idle), median(loaded), slices.Max(loaded)
		t.Logf("interactive round trip: idle %v, next to a bulk circuit median %v (%.2fx), worst %v (%.2fx); bulk backlog %d cells, %d cells sent",
			mi, ml, float64(ml)/float64(mi), worst, float64(worst)/float64(mi), backlog, sent)
		if backlog < pumpWindow/2 {
			t.Fatalf("bulk backlog only %d cells", backlog)
		}
		if ml > 2*mi || worst > 3*mi {
			t.Errorf("loaded round trip median %v, worst %v; want at most 2x and 3x idle (%v)", ml, worst, mi)
		}
		r.close()
	})
}

// BenchmarkInteractiveRTT measures the interactive round trip of one cell
// on a link, idle and next to a bulk circuit that keeps its queue full, on
// memnet and TCP. The target is loaded at most 2x idle.
//
// The memnet and TCP results include the transport's own buffer (memnet
// 256 KiB, loopback TCP several MiB), which the link cannot reorder: the
// bulk cells in it are ahead of the interactive cell whatever the
// scheduler does. memnet-16k has a 16 KiB buffer, so it shows what the
// link itself adds. On two cores the bulk circuit's crypto also competes
// with the interactive cell for the CPU.
func BenchmarkInteractiveRTT(b *testing.B) {
	small := network{"memnet-16k", func(t testing.TB) (net.Listener, func(context.Context) (net.Conn, error)) {
		n := &memnet.Network{BufferSize: 16 << 10}
		ln, err := n.Host("10.0.0.2").Listen(":7000")
		if err != nil {
			t.Fatal(err)
		}
		return ln, func(ctx context.Context) (net.Conn, error) { return n.Host("10.0.0.1").Dial(ctx, ln.Addr().String()) }
	}}
	for _, nw := range append(networks, small) {
		for _, load := range []string{"idle", "loaded"} {
			b.Run(nw.name+"/"+load, func(b *testing.B) {
				r := newRTTLink(b, nw.listen)
				for range 100 {
					r.roundTrip(b)
				}
				var stop func() int64
				bulkStart := time.Now()
				if load == "loaded" {
					stop = r.startBulk(b)
				}
				rtts := make([]time.Duration, 0, 1<<16)
				var queued int64
				for b.Loop() {
					if stop != nil {
						// Ping only next to a full bulk queue: on two
						// cores the bulk sender is not always
						// scheduled in time to keep it full.
						b.StopTimer()
						r.waitBacklog(b)
						b.StartTimer()
					}
					queued += int64(r.cli.QueueLen())
					d := r.roundTrip(b)
					if len(rtts) < cap(rtts) {
						rtts = append(rtts, d)
					}
				}
				b.StopTimer()
				if stop != nil {
					sent := stop()
					b.ReportMetric(float64(sent)*cell.Size/time.Since(bulkStart).Seconds()/1e6, "bulk-MB/s")
				}
				slices.Sort(rtts)
				for _, p := range []int{50, 90, 99} {
					b.ReportMetric(float64(rtts[len(rtts)*p/100].Microseconds()), fmt.Sprintf("p%d-µs", p))
				}
				b.ReportMetric(float64(queued)/float64(b.N), "queued-cells")
			})
		}
	}
}
