package dir

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// fakeClock is a settable clock for Config.Now.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// relayKeys returns the keys of relay i, derived from i so tests are
// reproducible.
func relayKeys(i int) *keys.NodeKeys {
	var s [32]byte
	s[0], s[1] = byte(i), byte(i>>8)
	var s64 [64]byte
	copy(s64[:], s[:])
	s[31] = 1
	return &keys.NodeKeys{
		Identity: keys.IdentityFromSeed(s),
		Link:     keys.LinkFromBytes(s),
		Onion:    keys.OnionFromBytes(s),
		KEM:      keys.KEMFromSeed(s64),
	}
}

// addrFor returns relay i's address: one /16 per relay (up to 51,200).
func addrFor(i int) string {
	return fmt.Sprintf("%d.%d.0.1:9001", 20+i/256, i%256)
}

// desc returns relay i's descriptor on network, published at pub, as
// Parse returns it.
func desc(t *testing.T, i int, network string, pub time.Time) *descriptor.Descriptor {
	t.Helper()
	k := relayKeys(i)
	d := &descriptor.Descriptor{
		Network:      network,
		Link:         k.Link.Public(),
		Onion:        k.Onion.Public(),
		OnionExpires: pub.Add(7 * 24 * time.Hour),
		KEM:          *k.KEM.Public(),
		Addrs:        []string{addrFor(i)},
		ExitPolicy:   "reject *:*",
		Published:    pub,
	}
	d.Sign(k.Identity)
	p, err := descriptor.Parse(d.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAddGetList(t *testing.T) {
	clk := &fakeClock{now: t0}
	dir := New(Config{Network: "net", Now: clk.Now})
	d1 := desc(t, 1, "net", t0.Add(-time.Hour))
	if !dir.Add(d1) {
		t.Fatal("fresh descriptor refused")
	}
	if dir.Add(d1) {
		t.Error("the same descriptor was taken twice")
	}
	if got := dir.Get(d1.NodeID()); got != d1 {
		t.Errorf("Get = %p, want %p", got, d1)
	}
	if dir.Add(desc(t, 1, "net", t0.Add(-2*time.Hour))) {
		t.Error("an older descriptor replaced a newer one")
	}
	newer := desc(t, 1, "net", t0.Add(-time.Minute))
	if !dir.Add(newer) || dir.Get(d1.NodeID()) != newer {
		t.Error("a newer descriptor did not replace the older one")
	}
	if dir.Add(desc(t, 2, "other", t0)) {
		t.Error("a descriptor of another network was taken")
	}
	if dir.Add(desc(t, 3, "net", t0.Add(descriptor.MaxClockSkew+time.Minute))) {
		t.Error("a descriptor from the future was taken")
	}
	if dir.Add(desc(t, 4, "net", t0.Add(-descriptor.MaxAge-time.Second))) {
		t.Error("a stale descriptor was taken")
	}
	if l := dir.List(); len(l) != 1 || l[0] != newer {
		t.Errorf("List = %v", l)
	}
}

// A descriptor leaves the directory when it turns MaxAge old, by the
// injected clock: no real time passes.
func TestExpiresAtMaxAge(t *testing.T) {
	clk := &fakeClock{now: t0}
	dir := New(Config{Network: "net", Now: clk.Now})
	d := desc(t, 1, "net", t0)
	if !dir.Add(d) {
		t.Fatal("refused")
	}
	clk.Set(t0.Add(descriptor.MaxAge))
	if len(dir.List()) != 1 || dir.Get(d.NodeID()) == nil {
		t.Fatal("expired at exactly MaxAge; it is valid up to and including MaxAge")
	}
	clk.Set(t0.Add(descriptor.MaxAge + time.Second))
	if dir.Get(d.NodeID()) != nil {
		t.Error("Get returned an expired descriptor")
	}
	if l := dir.List(); len(l) != 0 {
		t.Errorf("List returned %d expired descriptors", len(l))
	}
	if dir.Len() != 0 {
		t.Errorf("expired descriptor still held (Len %d)", dir.Len())
	}
	if dir.Add(d) {
		t.Error("Add took an expired descriptor")
	}
}

// Expired descriptors free room under MaxRelays.
func TestMaxRelays(t *testing.T) {
	clk := &fakeClock{now: t0}
	dir := New(Config{Network: "net", MaxRelays: 2, Now: clk.Now})
	if !dir.Add(desc(t, 1, "net", t0)) || !dir.Add(desc(t, 2, "net", t0.Add(-time.Hour))) {
		t.Fatal("refused")
	}
	if dir.Add(desc(t, 3, "net", t0)) {
		t.Error("took a third relay with MaxRelays 2")
	}
	if !dir.Add(desc(t, 2, "net", t0)) {
		t.Error("refused an update of a known relay when full")
	}
	clk.Set(t0.Add(descriptor.MaxAge + time.Minute))
	dir.List()
	clk.Set(t0.Add(descriptor.MaxAge + 2*time.Minute))
	if !dir.Add(desc(t, 3, "net", clk.Now())) {
		t.Error("no room after the others expired")
	}
}

// pipe is one end of an in-process link between two directories: Send
// hands the cell to the other directory at once.
type pipe struct {
	to     *Directory
	other  *pipe
	mu     sync.Mutex
	sent   []cell.Command
	failAt int    // Send fails once this many cells were sent (0: never)
	src    string // Source; "" means "198.51.100.1"
}

func (p *pipe) Source() string {
	if p.src == "" {
		return "198.51.100.1"
	}
	return p.src
}

func (p *pipe) Send(c *cell.Cell) error {
	p.mu.Lock()
	p.sent = append(p.sent, c.Cmd())
	n := len(p.sent)
	p.mu.Unlock()
	if p.failAt > 0 && n >= p.failAt {
		c.Free()
		return errors.New("send failed")
	}
	if p.to == nil {
		c.Free()
		return nil
	}
	p.to.HandleCell(p.other, c)
	return nil
}

func (p *pipe) LinkQueueLen() int { return 0 }

func connect(a, b *Directory) (aEnd, bEnd *pipe) {
	aEnd, bEnd = &pipe{to: b}, &pipe{to: a}
	aEnd.other, bEnd.other = bEnd, aEnd
	return aEnd, bEnd
}

func TestFetchServe(t *testing.T) {
	clk := &fakeClock{now: t0}
	server := New(Config{Network: "net", Now: clk.Now})
	for i := range 5 {
		server.Add(desc(t, i, "net", t0))
	}
	client := New(Config{Network: "net", Now: clk.Now})
	toServer, toClient := connect(client, server)
	if err := client.Fetch(context.Background(), toServer); err != nil {
		t.Fatal(err)
	}
	if n := len(client.List()); n != 5 {
		t.Fatalf("client learned %d of 5 relays", n)
	}
	want := []cell.Command{cell.CmdDirDesc, cell.CmdDirDesc, cell.CmdDirDesc, cell.CmdDirDesc, cell.CmdDirDesc, cell.CmdDirDone}
	if got := toClient.sent; len(got) != len(want) || got[5] != cell.CmdDirDone {
		t.Errorf("server sent %v, want %v", got, want)
	}
	if len(client.fetches) != 0 {
		t.Error("finished fetch left in the table")
	}
}

// An answer stops at the first Send that fails, and counts as cut.
func TestAnswerStopsAtSendError(t *testing.T) {
	dir := New(Config{Network: "net", Now: (&fakeClock{now: t0}).Now})
	defer dir.Close()
	for i := range 3 {
		dir.Add(desc(t, i, "net", t0))
	}
	p := &pipe{failAt: 2}
	dir.HandleCell(p, cell.New(0, cell.CmdDirGet))
	if len(p.sent) != 2 {
		t.Errorf("sent %d cells after an error", len(p.sent))
	}
	if st := dir.Stats(); st.AnswersCut != 1 || st.Answering != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestFetchEnds(t *testing.T) {
	dir := New(Config{Network: "net"})
	silent := &pipe{}

	// The link closes first.
	errc := make(chan error, 1)
	go func() { errc <- dir.Fetch(context.Background(), silent) }()
	waitFetch(t, dir, silent)
	dir.PeerClosed(silent)
	if err := <-errc; !errors.Is(err, ErrPeerClosed) {
		t.Errorf("fetch on a closed link: %v", err)
	}

	// The context ends first.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := dir.Fetch(ctx, silent); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("fetch past its deadline: %v", err)
	}

	// A second fetch from the same peer replaces the first.
	go func() { errc <- dir.Fetch(context.Background(), silent) }()
	waitFetch(t, dir, silent)
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	dir.Fetch(ctx2, silent)
	if err := <-errc; !errors.Is(err, ErrFetchReplaced) {
		t.Errorf("replaced fetch: %v", err)
	}

	// A DIR_GET that cannot be sent fails at once.
	if err := dir.Fetch(context.Background(), &pipe{failAt: 1}); err == nil {
		t.Error("fetch hid a Send error")
	}
	if len(dir.fetches) != 0 {
		t.Errorf("%d fetches left in the table", len(dir.fetches))
	}
}

func waitFetch(t *testing.T, dir *Directory, p Peer) {
	t.Helper()
	for range 1000 {
		dir.mu.Lock()
		f := dir.fetches[p]
		dir.mu.Unlock()
		if f != nil {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("fetch never started")
}

// A DIR_DESC that does not verify is dropped and counted; unknown cells are
// freed.
func TestHandleCellDropsBadDescriptors(t *testing.T) {
	dir := New(Config{Network: "net", Now: (&fakeClock{now: t0}).Now})
	defer dir.Close()
	p := &pipe{}
	errc := make(chan error, 1)
	go func() { errc <- dir.Fetch(context.Background(), p) }()
	waitFetch(t, dir, p)
	b := desc(t, 1, "net", t0).Marshal()
	b[len(b)-1] ^= 1
	c := cell.New(0, cell.CmdDirDesc)
	if err := c.SetPayload(b); err != nil {
		t.Fatal(err)
	}
	dir.HandleCell(p, c)
	dir.HandleCell(p, cell.New(0, cell.CmdPadding))
	dir.PeerClosed(p)
	<-errc
	if dir.Len() != 0 {
		t.Error("took a descriptor with a bad signature")
	}
	if st := dir.Stats(); st.Bad != 1 || st.Unsolicited != 1 {
		t.Errorf("stats %+v", st)
	}
}
