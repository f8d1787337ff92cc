package link

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/overlay/transport/memnet"
)

// queueLink is a Link with queues and no conn or goroutines, for testing
// the queues and the scheduler alone.
func queueLink(maxQueue, maxCirc int) *Link {
	return &Link{maxQueue: maxQueue, maxCircQueue: maxCirc, stallTimeout: time.Hour, wake: make(chan struct{}, 1)}
}

// pullAll takes everything the writer would, in order, as "circ:seq".
func (l *Link) pullAll() []string {
	var out []string
	l.qmu.Lock()
	defer l.qmu.Unlock()
	for {
		batch, _ := l.pullLocked(nil, writeBatchCells)
		if len(batch) == 0 {
			return out
		}
		for _, c := range batch {
			out = append(out, fmt.Sprintf("%d:%d", c.Circ(), c.Body()[0]))
			c.Free()
		}
	}
}

func seqCell(circ uint32, cmd cell.Command, seq byte) *cell.Cell {
	c := cell.New(circ, cmd)
	c.Body()[0] = seq
	return c
}

// The writer serves active circuits round robin, one cell per turn, keeps
// each circuit's order, and puts circuit 0 at the front when it becomes
// active.
func TestSchedulerRoundRobin(t *testing.T) {
	l := queueLink(100, 10)
	defer l.drainQueue()
	for i := range 3 {
		l.Send(seqCell(7, cell.CmdRelay, byte(i)))
	}
	l.Send(seqCell(9, cell.CmdRelay, 0))
	l.Send(seqCell(0, cell.CmdPadding, 0))
	l.Send(seqCell(9, cell.CmdRelay, 1))
	got := l.pullAll()
	want := []string{"0:0", "7:0", "9:0", "7:1", "9:1", "7:2"}
	if !slices.Equal(got, want) {
		t.Errorf("writer order %v, want %v", got, want)
	}
	if n := l.QueueLen(); n != 0 || len(l.circs) != 0 || l.active.n != 0 {
		t.Errorf("after draining: QueueLen %d, %d circuit queues, %d active", n, len(l.circs), l.active.n)
	}
}

// A circuit's bound refuses its own cells only; DESTROY replaces a full
// queue; a poisoned circuit accepts only DESTROY, CREATE and CREATED, and
// CREATE starts afresh without the old cells.
func TestCircuitQueueBound(t *testing.T) {
	l := queueLink(100, 3)
	defer l.drainQueue()
	for i := range 3 {
		if err := l.Send(seqCell(1, cell.CmdRelay, byte(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Send(seqCell(1, cell.CmdRelay, 3)); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("4th cell: %v, want ErrQueueFull", err)
	}
	if err := l.Send(seqCell(2, cell.CmdRelay, 0)); err != nil {
		t.Fatalf("other circuit: %v", err)
	}
	got := l.pullAll()
	if want := []string{"1:0", "2:0", "1:1", "1:2"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// Circuit 1 lost a cell: refused until a DESTROY, even with room.
	if err := l.Send(seqCell(1, cell.CmdRelay, 4)); !errors.Is(err, ErrQueueFull) {
		t.Errorf("poisoned circuit: %v, want ErrQueueFull", err)
	}
	if err := l.Send(seqCell(1, cell.CmdDestroy, 5)); err != nil {
		t.Errorf("DESTROY on a poisoned circuit: %v", err)
	}
	if err := l.Send(seqCell(1, cell.CmdRelay, 6)); err != nil {
		t.Errorf("after DESTROY: %v", err)
	}
	if got, want := l.pullAll(), []string{"1:5", "1:6"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// A full queue and DESTROY: the DESTROY replaces the backlog.
	for i := range 3 {
		l.Send(seqCell(3, cell.CmdRelay, byte(i)))
	}
	if err := l.Send(seqCell(3, cell.CmdDestroy, 9)); err != nil {
		t.Fatal(err)
	}
	if got, want := l.pullAll(), []string{"3:9"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// A poisoned circuit with cells, then CREATED (the ID was reused):
	// the old cells go.
	for i := range 4 {
		l.Send(seqCell(4, cell.CmdRelay, byte(i)))
	}
	if err := l.Send(seqCell(4, cell.CmdCreated, 7)); err != nil {
		t.Fatal(err)
	}
	if got, want := l.pullAll(), []string{"4:7"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	st := l.Stats()
	if st.QueueFull != 3 || st.CellsDropped != 6 || st.CircuitsDropped != 0 {
		t.Errorf("stats %+v; want QueueFull 3, CellsDropped 6", st)
	}
	if len(l.circs) != 0 {
		t.Errorf("%d circuit queues left", len(l.circs))
	}
}

// dropRecorder is a Handler that records CircuitDropped calls.
type dropRecorder struct {
	*testHandler
	mu      sync.Mutex // guards dropped; Sends in the tests hold it too
	dropped []uint32
	onDrop  func(l *Link, circ uint32)
}

func newDropRecorder(onCell func(*Link, *cell.Cell)) *dropRecorder {
	return &dropRecorder{testHandler: newHandler(onCell)}
}

func (d *dropRecorder) CircuitDropped(l *Link, circ uint32) {
	d.mu.Lock()
	d.dropped = append(d.dropped, circ)
	d.mu.Unlock()
	if d.onDrop != nil {
		d.onDrop(l, circ)
	}
}

func (d *dropRecorder) drops() []uint32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.dropped)
}

// stuckConn is a conn whose Writes block, once stuck is set, until it is
// closed: a peer that stopped reading, with no buffer in between, so that
// exactly the cells the writer took are in flight.
type stuckConn struct {
	net.Conn
	stuck  atomic.Bool
	closed chan struct{}
	once   sync.Once
}

func (c *stuckConn) Write(b []byte) (int, error) {
	if c.stuck.Load() {
		<-c.closed
		return 0, net.ErrClosed
	}
	return c.Conn.Write(b)
}

func (c *stuckConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// stuckLink returns the client end of a link in a synctest bubble whose
// writes block from now on; h receives its cells and drops.
func stuckLink(t testing.TB, cfg *Config, h Handler) *Link {
	t.Helper()
	nw := &memnet.Network{}
	ln, err := nw.Host("10.0.0.2").Listen(":1")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var sc *stuckConn
	srvKey := newKey(t)
	cli, srv, err1, err2 := dialBoth(ln, func(ctx context.Context) (net.Conn, error) {
		c, err := nw.Host("10.0.0.1").Dial(ctx, ln.Addr().String())
		sc = &stuckConn{Conn: c, closed: make(chan struct{})}
		return sc, err
	}, cfg, &Config{Static: srvKey}, srvKey.Public(), h, nil)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	sc.stuck.Store(true)
	t.Cleanup(func() {
		cli.Close()
		srv.Close()
	})
	return cli
}

// send sends n RELAY cells on circ and lets a second pass, so that the
// next cells sent are younger.
func send(t *testing.T, l *Link, circ uint32, n int) {
	t.Helper()
	for range n {
		if err := l.Send(cell.New(circ, cell.CmdRelay)); err != nil {
			t.Fatalf("Send on circuit %d: %v", circ, err)
		}
	}
	time.Sleep(time.Second)
}

// The node's budget, shared by two links whose peers do not read: a Send
// over it drops the queue of the circuit holding the oldest queued cell,
// across both links, and that link's Handler hears of it from another
// goroutine, without any lock held (it sends a DESTROY on that circuit,
// and the Send that ran the handler held the mutex CircuitDropped takes);
// if the oldest is the sender's own circuit, the Send fails instead.
// Budget, QueueLen and Stats agree throughout, and closing the links
// returns everything.
func TestBudgetDropsOldest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBudget(100)
		var logged []string
		cfg := &Config{Budget: b, Logf: func(format string, args ...any) {
			logged = append(logged, fmt.Sprintf(format, args...))
		}}
		ha, hb := newDropRecorder(nil), newDropRecorder(nil)
		ha.onDrop = func(l *Link, circ uint32) {
			if err := l.Send(cell.New(circ, cell.CmdDestroy)); err != nil {
				t.Errorf("DESTROY from CircuitDropped: %v", err)
			}
		}
		a, bl := stuckLink(t, cfg, ha), stuckLink(t, cfg, hb)

		send(t, a, 1, 1) // the writers take one cell each and block
		send(t, bl, 1, 1)
		send(t, a, 5, 30) // the oldest queued cells
		send(t, bl, 7, 40)
		send(t, a, 6, 20)
		send(t, bl, 8, 8)
		if n, m := a.QueueLen(), bl.QueueLen(); n != 51 || m != 49 || b.Queued() != 100 {
			t.Fatalf("QueueLen %d and %d, budget %d; want 51, 49, 100", n, m, b.Queued())
		}
		// One more is over the budget: circuit 5 of a goes (30 cells
		// bring it to 71, under 90), while this goroutine holds the
		// lock CircuitDropped takes, as a circuit layer would.
		ha.mu.Lock()
		err := bl.Send(cell.New(8, cell.CmdRelay))
		ha.mu.Unlock()
		if err != nil {
			t.Fatalf("Send over the budget: %v", err)
		}
		synctest.Wait()
		if got := ha.drops(); !slices.Equal(got, []uint32{5}) {
			t.Errorf("CircuitDropped on a: %v, want [5]", got)
		}
		if n, m := a.QueueLen(), bl.QueueLen(); n != 1+20+1 || m != 50 || b.Queued() != n+m {
			t.Errorf("QueueLen %d and %d, budget %d; want 22, 50, 72", n, m, b.Queued())
		}
		if a.CircuitQueueLen(5) != 1 {
			t.Errorf("circuit 5 holds %d cells, want its DESTROY", a.CircuitQueueLen(5))
		}
		if st := a.Stats(); st.CircuitsDropped != 1 || st.CellsDropped != 30 || st.QueueFull != 0 {
			t.Errorf("a's stats %+v", st)
		}

		// Now b's circuit 7 holds the oldest cells; b fills it up to
		// the budget and its own circuit is dropped: the Send fails and
		// b's Handler is not told.
		time.Sleep(time.Second)
		for range 28 {
			if err := bl.Send(cell.New(7, cell.CmdRelay)); err != nil {
				t.Fatal(err)
			}
		}
		if err := bl.Send(cell.New(7, cell.CmdRelay)); !errors.Is(err, ErrQueueFull) {
			t.Errorf("Send that dropped its own circuit: %v, want ErrQueueFull", err)
		}
		if err := bl.Send(cell.New(7, cell.CmdRelay)); !errors.Is(err, ErrQueueFull) {
			t.Errorf("Send on the dropped circuit: %v, want ErrQueueFull", err)
		}
		synctest.Wait()
		if got := hb.drops(); len(got) != 0 {
			t.Errorf("CircuitDropped on b: %v", got)
		}
		if n, m := a.QueueLen(), bl.QueueLen(); m != 1+9 || b.Queued() != n+m {
			t.Errorf("QueueLen %d and %d, budget %d; want 22, 10, 32", n, m, b.Queued())
		}
		if st := bl.Stats(); st.CircuitsDropped != 1 || st.CellsDropped != 68 || st.QueueFull != 2 {
			t.Errorf("b's stats %+v", st)
		}
		st := b.Stats()
		t.Logf("budget %+v; log: %q", st, logged)
		if st.Runs != 2 || st.Circuits != 2 || st.Cells != 98 || st.Peak != 100 || st.Max != 100 {
			t.Errorf("budget stats %+v; want 2 runs, 2 circuits, 98 cells, peak 100", st)
		}
		if len(logged) != 2 || !strings.Contains(logged[0], "dropped the queued cells of 1 circuit(s) (30 cells)") {
			t.Errorf("log %q", logged)
		}
		a.Close()
		bl.Close()
		if n := b.Queued(); n != 0 {
			t.Errorf("budget holds %d cells after both links closed", n)
		}
	})
}

// The link's own bound (MaxQueue) drops the queue of the link's circuit
// with the oldest queued cell, like the budget; when that is the link's
// own circuit 0, the link closes instead.
func TestLinkBoundDropsOldest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newDropRecorder(nil)
		l := stuckLink(t, &Config{MaxQueue: 10}, h)
		send(t, l, 1, 1) // taken by the writer
		send(t, l, 2, 3)
		send(t, l, 3, 6)
		if err := l.Send(cell.New(3, cell.CmdRelay)); err != nil {
			t.Fatalf("Send at the bound: %v", err)
		}
		synctest.Wait()
		if got := h.drops(); !slices.Equal(got, []uint32{2}) {
			t.Errorf("CircuitDropped %v, want [2]", got)
		}
		if n := l.QueueLen(); n != 1+7 {
			t.Errorf("QueueLen %d, want 8", n)
		}
		if st := l.Stats(); st.CircuitsDropped != 1 || st.CellsDropped != 3 || st.QueueFull != 0 {
			t.Errorf("stats %+v", st)
		}

		// On another link, circuit 0 (directory answers, say) holds the
		// oldest cells.
		h = newDropRecorder(nil)
		l = stuckLink(t, &Config{MaxQueue: 10}, h)
		send(t, l, 1, 1)
		send(t, l, 0, 2)
		send(t, l, 3, 7)
		if err := l.Send(cell.New(3, cell.CmdRelay)); !errors.Is(err, ErrQueueFull) {
			t.Errorf("Send when circuit 0 was the oldest: %v, want ErrQueueFull", err)
		}
		<-l.Done()
		if err := l.Err(); !errors.Is(err, ErrQueueFull) {
			t.Errorf("link closed with %v, want ErrQueueFull", err)
		}
		if got := h.drops(); len(got) != 0 {
			t.Errorf("CircuitDropped %v; circuit 0 is never reported", got)
		}
	})
}

// A peer that stops reading: once a cell has waited StallTimeout to be
// written the link closes with ErrStalled, exactly then, and the budget
// gets every cell back; a shorter custom StallTimeout works too.
func TestStallTimeout(t *testing.T) {
	for _, timeout := range []time.Duration{0, 5 * time.Second} {
		t.Run(fmt.Sprint(timeout), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := NewBudget(0)
				h := newHandler(nil)
				l := stuckLink(t, &Config{Budget: b, StallTimeout: timeout}, h)
				start := time.Now()
				for i := range 100 { // the first is taken by the writer, which blocks
					if err := l.Send(cell.New(uint32(i%5+1), cell.CmdRelay)); err != nil {
						t.Fatal(err)
					}
					time.Sleep(40 * time.Millisecond) // cells keep coming
				}
				if n := b.Queued(); n != 100 || l.QueueLen() != 100 {
					t.Fatalf("budget %d, QueueLen %d; want 100", n, l.QueueLen())
				}
				err := h.waitClosedBubble()
				want := timeout
				if want == 0 {
					want = DefaultStallTimeout
				}
				if !errors.Is(err, ErrStalled) || time.Since(start) != want {
					t.Errorf("Closed(%v) after %v, want ErrStalled after %v", err, time.Since(start), want)
				}
				t.Log(err)
				if n := b.Queued(); n != 0 {
					t.Errorf("budget holds %d cells after the stalled link closed", n)
				}
				b.mu.Lock()
				if n := len(b.links); n != 0 {
					t.Errorf("budget still lists %d links", n)
				}
				b.mu.Unlock()
			})
		})
	}
}

// blockedPeer returns a handler that stops reading at its first cell
// until release is closed.
func blockedPeer(release chan struct{}) *testHandler {
	return newHandler(func(l *Link, c *cell.Cell) {
		c.Free()
		<-release
	})
}

// An honest slow link is not stalled: a bulk circuit keeps its window in
// flight over a 1 MiB/s path for two minutes, so about 4 MiB are always
// queued, but each cell waits only seconds, and the link stays open. A
// link closed on queue length alone would have been cut.
func TestSlowLinkNotStalled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRTTLink(t, shapedListen(1<<20, 20*time.Millisecond))
		stop := r.startBulk(t)
		time.Sleep(2 * time.Minute)
		backlog := r.cli.QueueLen()
		sent := stop()
		if err := r.cli.Err(); err != nil {
			t.Fatalf("slow link closed: %v", err)
		}
		t.Logf("%d cells sent in 2 minutes, %d queued at the end", sent, backlog)
		if backlog < pumpWindow/2 || sent < 20_000 {
			t.Errorf("bulk backlog %d, %d cells sent: the test did not load the link", backlog, sent)
		}
		r.close()
	})
}

// When the link's own cells (circuit 0) are the oldest over the budget,
// the link closes: its directory answer cannot be cut short silently.
func TestBudgetClosesLinkForOwnCells(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBudget(10)
		h := newDropRecorder(nil)
		l := stuckLink(t, &Config{Budget: b}, h)
		send(t, l, 1, 1)
		send(t, l, 0, 3)
		send(t, l, 2, 6)
		if err := l.Send(cell.New(2, cell.CmdRelay)); !errors.Is(err, ErrQueueFull) {
			t.Errorf("Send over the budget on a link losing its own cells: %v, want ErrQueueFull", err)
		}
		<-l.Done()
		if err := l.Err(); !errors.Is(err, ErrQueueFull) {
			t.Errorf("link closed with %v, want ErrQueueFull", err)
		}
		if got := h.drops(); len(got) != 0 {
			t.Errorf("CircuitDropped %v", got)
		}
		h.waitClosedBubble()
		if n := b.Queued(); n != 0 {
			t.Errorf("budget holds %d cells", n)
		}
	})
}

// Many goroutines send on many circuits of several links that share a
// small budget, while the out-of-memory handler drops circuits and their
// owners send DESTROYs from CircuitDropped: no deadlock, the count never
// passes the budget, and everything is returned once the links close.
func TestBudgetConcurrent(t *testing.T) {
	b := NewBudget(200)
	var links []*Link
	for range 3 {
		h := newDropRecorder(nil)
		h.onDrop = func(l *Link, circ uint32) { l.Send(cell.New(circ, cell.CmdDestroy)) }
		ln, dial := memnetListen(t)
		srvKey := newKey(t)
		cli, srv, err1, err2 := dialBoth(ln, dial, &Config{Budget: b, MaxCircuitQueue: 50}, &Config{Static: srvKey},
			srvKey.Public(), h, nil)
		ln.Close()
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		t.Cleanup(func() {
			cli.Close()
			srv.Close()
		})
		links = append(links, cli)
	}
	var wg sync.WaitGroup
	var refused atomic.Int64
	for g := range 6 {
		wg.Go(func() {
			for i := range 5000 {
				l := links[(g+i)%len(links)]
				circ := uint32(g*10 + i%7 + 1)
				cmd := cell.CmdRelay
				if i%97 == 0 {
					cmd = cell.CmdDestroy
				}
				if err := l.Send(cell.New(circ, cmd)); errors.Is(err, ErrQueueFull) {
					refused.Add(1)
				} else if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	st := b.Stats()
	t.Logf("budget %+v, %d Sends refused", st, refused.Load())
	if st.Peak > st.Max {
		t.Errorf("peak %d over the budget %d", st.Peak, st.Max)
	}
	for _, l := range links {
		l.Close()
	}
	if n := b.Queued(); n != 0 {
		t.Errorf("budget holds %d cells after the links closed", n)
	}
}

// BenchmarkBudgetOOM is the link side of a relay holding 10,000 circuits
// that each try to queue a full window (512 cells) towards peers that do
// not read, over four links sharing the default budget: the queued cells,
// and so the heap, stay at the budget, and the circuits holding the oldest
// cells lose their queues (here mostly by each link's own MaxQueue, 16384
// cells, since four of them make the budget). It reports the live heap
// at the end, the budget's peak, the budget handler's runs, the circuits
// dropped on all links and the cost of a Send.
func BenchmarkBudgetOOM(b *testing.B) {
	const links, circuits, window = 4, 10_000, 512
	for b.Loop() {
		b.StopTimer()
		budget := NewBudget(0)
		var ls []*Link
		for range links {
			ls = append(ls, stuckLink(b, &Config{Budget: budget}, newHandler(nil)))
		}
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		b.StartTimer()
		start := time.Now()
		refused := 0
		for c := range circuits {
			l := ls[c%links]
			for range window {
				if l.Send(cell.New(uint32(c+1), cell.CmdRelay)) != nil {
					refused++
				}
			}
		}
		elapsed := time.Since(start)
		b.StopTimer()
		runtime.GC() // what is live, not garbage not yet swept
		runtime.ReadMemStats(&after)
		st := budget.Stats()
		var dropped uint64
		for _, l := range ls {
			dropped += l.Stats().CircuitsDropped
		}
		b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/(1<<20), "heap-MiB")
		b.ReportMetric(float64(st.Peak)*cell.Size/(1<<20), "peak-queued-MiB")
		b.ReportMetric(float64(st.Runs), "oom-runs")
		b.ReportMetric(float64(dropped), "circuits-dropped")
		b.ReportMetric(float64(elapsed.Nanoseconds())/(circuits*window), "ns/Send")
		for _, l := range ls {
			l.Close()
		}
		if n := budget.Queued(); n != 0 {
			b.Fatalf("budget holds %d cells after close", n)
		}
		b.StartTimer()
	}
}

// A link whose own queue (circuit 0) fills is closed, never left with a
// refused circuit 0 that would silence it for good (found by the
// hostile-peer suite).
func TestCircuitZeroFullClosesLink(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := stuckLink(t, &Config{MaxCircuitQueue: 8}, nil)
		var err error
		for i := 0; i < 100 && err == nil; i++ {
			err = l.Send(cell.New(0, cell.CmdDirGet))
		}
		if !errors.Is(err, ErrQueueFull) {
			t.Fatalf("Send on a full circuit 0: %v, want ErrQueueFull", err)
		}
		<-l.Done()
		if err := l.Err(); !errors.Is(err, ErrQueueFull) {
			t.Errorf("link closed with %v, want ErrQueueFull", err)
		}
	})
}
