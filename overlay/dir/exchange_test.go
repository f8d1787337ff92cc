package dir

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
)

// queuePeer is a link whose queue only empties when the test drains it,
// like a peer that reads when the test says so.
type queuePeer struct {
	mu      sync.Mutex
	q       []*cell.Cell
	maxLen  int // the longest the queue was
	descs   int // DIR_DESC cells sent
	done    []byte
	dropped int
}

func (p *queuePeer) Send(c *cell.Cell) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.q = append(p.q, c)
	p.maxLen = max(p.maxLen, len(p.q))
	switch c.Cmd() {
	case cell.CmdDirDesc:
		p.descs++
	case cell.CmdDirDone:
		b, _ := c.Payload()
		status := DoneComplete
		if len(b) > 0 {
			status = b[0]
		}
		p.done = append(p.done, status)
	}
	return nil
}

func (p *queuePeer) Source() string { return "203.0.113.7" }

func (p *queuePeer) LinkQueueLen() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.q)
}

// drain empties the queue, as if the peer read everything.
func (p *queuePeer) drain() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.q {
		c.Free()
	}
	p.q = p.q[:0]
}

func (p *queuePeer) state() (descs, maxLen int, done []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.descs, p.maxLen, append([]byte(nil), p.done...)
}

func fullDir(t *testing.T, n int, cfg Config) *Directory {
	t.Helper()
	cfg.Network = "net"
	cfg.Now = (&fakeClock{now: t0}).Now
	dir := New(cfg)
	for i := range n {
		if !dir.Add(desc(t, i, "net", t0)) {
			t.Fatal("refused")
		}
	}
	return dir
}

// A DIR_GET answer never lets the link's queue hold more than the answer
// window: it sends a window, waits for the peer to read, sends the next,
// and ends with DIR_DONE. One 4-KiB DIR_GET no longer queues the whole
// directory at once.
func TestAnswerPaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, window = 200, 16
		dir := fullDir(t, n, Config{AnswerWindow: window})
		defer dir.Close()
		p := &queuePeer{}
		dir.HandleCell(p, cell.New(0, cell.CmdDirGet))
		if descs, _, _ := p.state(); descs != window {
			t.Fatalf("first window: %d descriptors, want %d", descs, window)
		}
		time.Sleep(time.Second)
		if descs, maxLen, _ := p.state(); descs != window || maxLen > window {
			t.Fatalf("with nobody reading: %d descriptors sent, queue up to %d", descs, maxLen)
		}
		for range 2 * n / window {
			p.drain()
			time.Sleep(2 * pollInterval)
		}
		descs, maxLen, done := p.state()
		if descs != n || maxLen > window+1 || len(done) != 1 || done[0] != DoneComplete {
			t.Fatalf("sent %d of %d descriptors, queue up to %d (window %d), DIR_DONE %v", descs, n, maxLen, window, done)
		}
		if st := dir.Stats(); st.Answers != 1 || st.Answering != 0 {
			t.Errorf("stats %+v", st)
		}
		p.drain()
	})
}

// A peer that does not read has its answer cut after AnswerTimeout, with
// DIR_DONE DoneCut; once its link closes the directory holds nothing for it.
func TestAnswerCutWhenPeerDoesNotRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := fullDir(t, 100, Config{AnswerWindow: 8, AnswerTimeout: 5 * time.Second})
		defer dir.Close()
		p := &queuePeer{}
		dir.HandleCell(p, cell.New(0, cell.CmdDirGet))
		time.Sleep(4 * time.Second)
		if _, _, done := p.state(); len(done) != 0 {
			t.Fatal("cut before AnswerTimeout")
		}
		time.Sleep(2 * time.Second)
		descs, maxLen, done := p.state()
		if descs != 8 || maxLen != 9 || len(done) != 1 || done[0] != DoneCut {
			t.Fatalf("%d descriptors, queue up to %d, DIR_DONE %v", descs, maxLen, done)
		}
		if st := dir.Stats(); st.AnswersCut != 1 || st.Answering != 0 || st.Peers != 1 {
			t.Errorf("stats %+v", st)
		}
		dir.PeerClosed(p)
		if st := dir.Stats(); st.Peers != 0 || st.Answering != 0 {
			t.Errorf("after the link closed: %+v", st)
		}
		p.drain()
	})
}

// A link may send GetBurst DIR_GETs at once, then one per GetInterval; one
// over the rate is answered DIR_DONE DoneRefused, and a DIR_GET while the
// link's answer is in flight is dropped.
func TestGetRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := fullDir(t, 3, Config{GetBurst: 2, GetInterval: time.Minute})
		defer dir.Close()
		p := &queuePeer{}
		for range 3 {
			dir.HandleCell(p, cell.New(0, cell.CmdDirGet))
			p.drain()
		}
		_, _, done := p.state()
		if string(done) != string([]byte{DoneComplete, DoneComplete, DoneRefused}) {
			t.Fatalf("DIR_DONE statuses %v", done)
		}
		time.Sleep(time.Minute)
		dir.HandleCell(p, cell.New(0, cell.CmdDirGet))
		p.drain()
		if descs, _, done := p.state(); descs != 9 || len(done) != 4 || done[3] != DoneComplete {
			t.Fatalf("after GetInterval: %d descriptors, DIR_DONE %v", descs, done)
		}
		if st := dir.Stats(); st.GetsRefused != 1 || st.Answers != 3 {
			t.Errorf("stats %+v", st)
		}

		// A refusal is queued only while the queue has room: a peer that
		// does not read gets nothing more.
		for range 10 {
			dir.HandleCell(p, cell.New(0, cell.CmdDirGet))
		}
		if _, maxLen, _ := p.state(); maxLen > DefaultAnswerWindow {
			t.Errorf("refusals queued %d cells", maxLen)
		}
		p.drain()

		// One answer in flight per link.
		big := fullDir(t, 50, Config{AnswerWindow: 4})
		defer big.Close()
		q := &queuePeer{}
		big.HandleCell(q, cell.New(0, cell.CmdDirGet))
		big.HandleCell(q, cell.New(0, cell.CmdDirGet))
		if descs, _, done := q.state(); descs != 4 || len(done) != 0 {
			t.Fatalf("second DIR_GET: %d descriptors, DIR_DONE %v", descs, done)
		}
		if st := big.Stats(); st.GetsDropped != 1 || st.Answering != 1 {
			t.Errorf("stats %+v", st)
		}
		big.PeerClosed(q)
		q.drain()
	})
}

// At most MaxAnswers answers wait for their links at once; a further
// DIR_GET needing more than one window is refused.
func TestMaxAnswers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := fullDir(t, 20, Config{AnswerWindow: 4, MaxAnswers: 2})
		defer dir.Close()
		var peers []*queuePeer
		for range 3 {
			p := &queuePeer{}
			peers = append(peers, p)
			dir.HandleCell(p, cell.New(0, cell.CmdDirGet))
		}
		if _, _, done := peers[2].state(); len(done) != 1 || done[0] != DoneRefused {
			t.Fatalf("third answer: DIR_DONE %v", done)
		}
		dir.PeerClosed(peers[0])
		p := &queuePeer{}
		dir.HandleCell(p, cell.New(0, cell.CmdDirGet))
		if descs, _, _ := p.state(); descs != 4 {
			t.Errorf("no room after a link closed: %d descriptors", descs)
		}
		for _, q := range append(peers, p) {
			dir.PeerClosed(q)
			q.drain()
		}
	})
}

// DIR_DESC is taken only as an answer to our DIR_GET, from the link it was
// sent on, and at most MaxRelays per answer; other DIR_DESC are dropped and
// counted. (Before, any link could push descriptors.)
func TestUnsolicitedDescDropped(t *testing.T) {
	clk := &fakeClock{now: t0}
	dir := New(Config{Network: "net", MaxRelays: 3, Now: clk.Now})
	defer dir.Close()
	descCell := func(i int) *cell.Cell {
		c := cell.New(0, cell.CmdDirDesc)
		if err := c.SetPayload(desc(t, i, "net", t0).Marshal()); err != nil {
			t.Fatal(err)
		}
		return c
	}
	asked, other := &pipe{}, &pipe{}
	dir.HandleCell(asked, descCell(1))
	if dir.Len() != 0 {
		t.Fatal("took a DIR_DESC nobody asked for")
	}
	errc := make(chan error, 1)
	go func() { errc <- dir.Fetch(context.Background(), asked) }()
	waitFetch(t, dir, asked)
	dir.HandleCell(other, descCell(2))
	if dir.Len() != 0 {
		t.Fatal("took a DIR_DESC from another link than the one asked")
	}
	for i := range 5 {
		dir.HandleCell(asked, descCell(10+i))
	}
	dir.HandleCell(asked, cell.New(0, cell.CmdDirDone))
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	dir.HandleCell(asked, descCell(3))
	if dir.Len() != 3 {
		t.Errorf("kept %d descriptors, want the 3 of MaxRelays", dir.Len())
	}
	if st := dir.Stats(); st.Unsolicited != 3 || st.Excess != 2 {
		t.Errorf("stats %+v", st)
	}
}

// Fetch reports a refused DIR_GET, and takes a cut answer (or one with an
// unknown status) as an answer.
func TestFetchStatus(t *testing.T) {
	dir := New(Config{Network: "net"})
	defer dir.Close()
	for _, tc := range []struct {
		status byte
		want   error
	}{{DoneRefused, ErrRefused}, {DoneCut, nil}, {DoneComplete, nil}, {99, nil}} {
		p := &pipe{}
		errc := make(chan error, 1)
		go func() { errc <- dir.Fetch(context.Background(), p) }()
		waitFetch(t, dir, p)
		c := cell.New(0, cell.CmdDirDone)
		c.SetPayload([]byte{tc.status})
		dir.HandleCell(p, c)
		if err := <-errc; !errors.Is(err, tc.want) {
			t.Errorf("status %d: %v, want %v", tc.status, err, tc.want)
		}
	}
	if st := dir.Stats(); st.CutReceived != 2 || st.Fetches != 0 {
		t.Errorf("stats %+v", st)
	}
}

// Close ends fetches and answers, and waits for the serve loop.
func TestCloseEndsAnswers(t *testing.T) {
	dir := fullDir(t, 20, Config{AnswerWindow: 2})
	p := &queuePeer{}
	dir.HandleCell(p, cell.New(0, cell.CmdDirGet))
	f := &pipe{}
	errc := make(chan error, 1)
	go func() { errc <- dir.Fetch(context.Background(), f) }()
	waitFetch(t, dir, f)
	dir.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Errorf("fetch: %v", err)
	}
	if st := dir.Stats(); st.Answering != 0 || st.Peers != 0 {
		t.Errorf("stats %+v", st)
	}
	dir.Close()
	p.drain()
}

// Whatever cells a peer sends on circuit 0, the directory neither panics
// nor takes more than MaxRelays descriptors, and keeps nothing for the
// link once it closed.
func FuzzHandleCell(f *testing.F) {
	d := func(i int) []byte {
		c := cell.New(0, cell.CmdDirDesc)
		c.SetPayload(descFor(i).Marshal())
		defer c.Free()
		return append([]byte(nil), c.Bytes()...)
	}
	f.Add(d(1), []byte{byte(cell.CmdDirDone)}, true)
	f.Add(d(2), []byte{byte(cell.CmdDirGet), byte(cell.CmdDirDesc)}, false)
	f.Fuzz(func(t *testing.T, raw []byte, cmds []byte, fetching bool) {
		dir := New(Config{Network: "net", MaxRelays: 2, AnswerWindow: 1, Now: (&fakeClock{now: t0}).Now})
		defer dir.Close()
		dir.Add(descFor(7))
		p := &queuePeer{}
		if fetching {
			// A Fetch waiting on p, without its goroutine.
			dir.fetches[p] = &fetch{done: make(chan struct{})}
		}
		for _, cmd := range cmds {
			b := make([]byte, cell.Size)
			copy(b, raw)
			b[0], b[1], b[2], b[3] = 0, 0, 0, 0
			b[4] = cmd
			c, err := cell.Parse(b)
			if err != nil {
				continue
			}
			dir.HandleCell(p, c)
		}
		dir.PeerClosed(p)
		if st := dir.Stats(); dir.Len() > 2 || st.Peers != 0 || st.Fetches != 0 || st.Answering != 0 {
			t.Fatalf("%d relays, stats %+v", dir.Len(), st)
		}
		p.drain()
	})
}

// descFor is relay i's descriptor on network "net", published at t0.
var descCache sync.Map

func descFor(i int) *descriptor.Descriptor {
	if d, ok := descCache.Load(i); ok {
		return d.(*descriptor.Descriptor)
	}
	k := relayKeys(i)
	d := &descriptor.Descriptor{
		Network: "net", Link: k.Link.Public(), Onion: k.Onion.Public(), OnionExpires: t0.Add(7 * 24 * time.Hour),
		KEM: *k.KEM.Public(), Addrs: []string{addrFor(i)}, ExitPolicy: "reject *:*", Published: t0,
	}
	d.Sign(k.Identity)
	p, err := descriptor.Parse(d.Marshal())
	if err != nil {
		panic(err)
	}
	descCache.Store(i, p)
	return p
}
