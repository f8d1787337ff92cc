package dir

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/circuit/protover"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
)

// gossipDir is a directory on "net" at clock clk with a generous request
// rate, so tests run several rounds on one link.
func gossipDir(clk *fakeClock, cfg Config) *Directory {
	cfg.Network = "net"
	cfg.Now = clk.Now
	if cfg.Gossip.Burst == 0 {
		cfg.Gossip.Burst = 1000
	}
	return New(cfg)
}

func TestSupportsGossip(t *testing.T) {
	if SupportsGossip(protover.New(map[protover.ID]string{protover.Dir: "1-2"})) {
		t.Error("Dir=1-2 speaks no gossip")
	}
	if !SupportsGossip(protover.New(map[protover.ID]string{protover.Dir: "1-3"})) {
		t.Error("Dir=1-3 speaks gossip")
	}
}

// Two directories converge in one round each way, and only the
// difference travels: the descriptors one lacks or holds older. A second
// round between equal directories costs one SUMMARY_REQ and one SUMMARY.
func TestSyncConverges(t *testing.T) {
	clk := &fakeClock{now: t0}
	a, b := gossipDir(clk, Config{}), gossipDir(clk, Config{})
	defer a.Close()
	defer b.Close()
	for i := range 60 {
		d := desc(t, i, "net", t0.Add(-time.Hour))
		switch {
		case i < 40:
			a.Add(d)
			b.Add(d)
		case i < 50:
			b.Add(d) // a lacks 10
		default:
			a.Add(d) // b lacks 10
		}
	}
	for i := range 3 { // a holds 3 older
		b.Add(desc(t, i, "net", t0))
	}
	toB, toA := connect(a, b)
	res, err := a.Sync(context.Background(), toB)
	if err != nil {
		t.Fatal(err)
	}
	if res.Learned != 10 || res.Updated != 3 || res.Wanted != 13 || res.Refused != 0 || res.Bad != 0 || res.Missing != 0 {
		t.Errorf("a's round: %+v", res)
	}
	if descs := countCmds(toA.sent, cell.CmdGossip); res.BytesRecv != uint64(descs)*cell.Size {
		t.Errorf("a counted %d bytes received, b sent %d GOSSIP cells", res.BytesRecv, descs)
	}
	// b sent SUMMARY, the IDS cells and 13 DESC and a DONE, nothing else.
	ids := int(res.BytesRecv/cell.Size) - 1 - 13 - 1
	if ids < 1 || ids > 2 {
		t.Errorf("%d IDS cells for %d buckets", ids, res.Buckets)
	}
	res, err = b.Sync(context.Background(), toA)
	if err != nil || res.Learned != 10 || res.Updated != 0 {
		t.Fatalf("b's round: %+v, %v", res, err)
	}
	if a.Len() != 60 || b.Len() != 60 {
		t.Fatalf("a %d, b %d relays", a.Len(), b.Len())
	}
	for i := range 3 {
		if a.Get(relayKeys(i).Identity.Public().NodeID()).Published != t0 {
			t.Errorf("relay %d not updated", i)
		}
	}
	res, err = a.Sync(context.Background(), toB)
	if err != nil {
		t.Fatal(err)
	}
	if res != (SyncResult{BytesSent: cell.Size, BytesRecv: cell.Size}) {
		t.Errorf("equal directories: %+v, want one cell each way", res)
	}
	// The learned relays are attributed to the peer that introduced them.
	if info, ok := a.Info(relayKeys(45).Identity.Public().NodeID()); !ok || info.Source != toB.Source() || info.Confirmed {
		t.Errorf("info %+v", info)
	}
	if st := a.Stats(); st.GossipBytesSent == 0 || st.GossipBytesRecv == 0 || st.Syncing != 0 || st.GossipUnsolicited != 0 {
		t.Errorf("stats %+v", st)
	}
}

func countCmds(cmds []cell.Command, c cell.Command) int {
	n := 0
	for _, x := range cmds {
		if x == c {
			n++
		}
	}
	return n
}

// A directory larger than one IDS answer (MaxIDCells 1: 101 entries) and
// one WANT cell is learned whole, over several IDS_REQs and WANT cells.
func TestSyncPages(t *testing.T) {
	clk := &fakeClock{now: t0}
	a := gossipDir(clk, Config{Admission: Admission{PerSource: 1000}})
	b := gossipDir(clk, Config{Gossip: GossipConfig{MaxIDCells: 1}, AnswerWindow: 4})
	defer a.Close()
	defer b.Close()
	for i := range 300 {
		b.Add(descFor(i))
	}
	toB, _ := connect(a, b)
	res, err := a.Sync(context.Background(), toB)
	if err != nil || res.Learned != 300 || a.Len() != 300 {
		t.Fatalf("%+v, %v; %d relays", res, err, a.Len())
	}
}

// Descriptors a peer sends in a round are verified before they are
// stored: forged, other-network and stale ones (by the receiver's clock)
// are refused and never stored, and the honest ones of the same round
// still are. The refused versions are not asked for again.
func TestSyncRefusesBadDescriptors(t *testing.T) {
	serverClk, clientClk := &fakeClock{now: t0.Add(-30 * time.Minute)}, &fakeClock{now: t0}
	server, client := gossipDir(serverClk, Config{}), gossipDir(clientClk, Config{})
	defer server.Close()
	defer client.Close()
	for i := range 5 {
		server.Add(desc(t, i, "net", t0.Add(-time.Hour)))
	}
	// Inserted behind the server's checks: a lying or broken peer.
	forged := *desc(t, 10, "net", t0.Add(-time.Hour))
	forged.Bandwidth = 12345 // the signature no longer covers it
	other := desc(t, 11, "other", t0.Add(-time.Hour))
	k := relayKeys(12)
	st := &descriptor.Descriptor{
		Network: "net", Link: k.Link.Public(), Onion: k.Onion.Public(), OnionExpires: t0.Add(-10 * time.Minute),
		KEM: *k.KEM.Public(), Addrs: []string{addrFor(12)}, ExitPolicy: "reject *:*", Published: t0.Add(-time.Hour),
	}
	st.Sign(k.Identity) // its onion key expired by the client's clock, not the server's
	stale, err := descriptor.Parse(st.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	server.mu.Lock()
	for _, d := range []*descriptor.Descriptor{&forged, other, stale} {
		server.insertLocked(d.NodeID(), &entry{d: d, firstSeen: t0, confirmed: true})
	}
	server.mu.Unlock()
	toServer, _ := connect(client, server)
	res, err := client.Sync(context.Background(), toServer)
	if err != nil {
		t.Fatal(err)
	}
	if res.Learned != 5 || res.Bad != 1 || res.Refused != 2 || client.Len() != 5 {
		t.Errorf("%+v; %d stored", res, client.Len())
	}
	for _, d := range []*descriptor.Descriptor{&forged, other, stale} {
		if client.Get(d.NodeID()) != nil {
			t.Error("a bad descriptor was stored")
		}
	}
	res, err = client.Sync(context.Background(), toServer)
	if err != nil || res.Wanted != 1 || res.Learned != 0 || res.Missing != 1 {
		// Only the forged one is asked again (its claimed version was
		// never refused by admission: it did not verify).
		t.Errorf("second round: %+v, %v", res, err)
	}
}

// Gossip answers nobody asked for are dropped and counted, as are DESC of
// relays the round did not want; malformed cells are counted.
func TestUnsolicitedGossipDropped(t *testing.T) {
	clk := &fakeClock{now: t0}
	dir := gossipDir(clk, Config{})
	defer dir.Close()
	p := &pipe{}
	send := func(m *Msg) { dir.HandleCell(p, gossipCell(m.Marshal())) }
	send(&Msg{Type: MsgDesc, Desc: descFor(1).Marshal()})
	send(&Msg{Type: MsgSummary})
	send(&Msg{Type: MsgIDs, Last: true})
	send(&Msg{Type: MsgDone})
	dir.HandleCell(p, gossipCell([]byte{99}))
	if dir.Len() != 0 {
		t.Fatal("stored an unsolicited descriptor")
	}
	if st := dir.Stats(); st.GossipUnsolicited != 4 || st.GossipMalformed != 1 || st.GossipBytesRecv != 5*cell.Size {
		t.Errorf("stats %+v", st)
	}
}

// floodPeer is a peer that never reads (its queue only grows) and
// records the GOSSIP messages sent to it.
type floodPeer struct{ queuePeer }

// A hostile peer floods requests and unsolicited answers: what the
// directory holds for it stays bounded (the WANT entries, the queue it
// fills with answers), requests over its rate get BUSY, and a legitimate
// peer keeps syncing meanwhile.
func TestGossipFloodBounded(t *testing.T) {
	clk := &fakeClock{now: t0}
	const maxRelays, window = 50, 8
	server := New(Config{Network: "net", Now: clk.Now, MaxRelays: maxRelays, AnswerWindow: window,
		Gossip: GossipConfig{Burst: 20, MaxWanting: 60}})
	defer server.Close()
	var ids []keys.NodeID
	for i := range maxRelays {
		d := descFor(i)
		server.Add(d)
		ids = append(ids, d.NodeID())
	}
	bad1, bad2 := &floodPeer{}, &floodPeer{}
	send := func(p Peer, m *Msg) { server.HandleCell(p, gossipCell(m.Marshal())) }
	for range 200 {
		// WANT cells that never end: held entries stay within MaxRelays
		// per link and MaxWanting over all links.
		send(bad1, &Msg{Type: MsgWant, More: true, Want: ids})
		send(bad2, &Msg{Type: MsgWant, More: true, Want: ids})
		send(bad1, &Msg{Type: MsgSummaryReq})
		send(bad1, &Msg{Type: MsgIDsReq, Buckets: []byte{1, 2, 3}})
		send(bad1, &Msg{Type: MsgDesc, Desc: descFor(99).Marshal()})
	}
	server.mu.Lock()
	held1, held2, wanting := len(server.peers[bad1].want), len(server.peers[bad2].want), server.wanting
	server.mu.Unlock()
	if held1 > maxRelays || held1+held2 != wanting || wanting > 60 {
		t.Errorf("held %d + %d WANT entries (total %d)", held1, held2, wanting)
	}
	if _, maxLen, _ := bad1.state(); maxLen > window {
		t.Errorf("a peer that does not read had %d cells queued (window %d)", maxLen, window)
	}
	st := server.Stats()
	if st.GossipRefused == 0 || st.GossipWantsDropped == 0 || server.Len() != maxRelays {
		t.Errorf("stats %+v", st)
	}
	// Meanwhile an honest peer syncs everything.
	client := gossipDir(clk, Config{})
	defer client.Close()
	toServer, _ := connect(client, server)
	res, err := client.Sync(context.Background(), toServer)
	if err != nil || res.Learned != maxRelays {
		t.Fatalf("honest round: %+v, %v", res, err)
	}
	// The flooders' state goes with their links.
	server.PeerClosed(bad1)
	server.PeerClosed(bad2)
	server.PeerClosed(toServer.other)
	if st := server.Stats(); st.Peers != 0 || server.wanting != 0 {
		t.Errorf("after the links closed: %+v, %d wanting", st, server.wanting)
	}
	bad1.drain()
	bad2.drain()
}

// A peer over its request rate gets BUSY, and the Sync reports
// ErrRefused; the round's state is gone afterwards.
func TestSyncBusy(t *testing.T) {
	clk := &fakeClock{now: t0}
	a := gossipDir(clk, Config{})
	b := New(Config{Network: "net", Now: clk.Now, Gossip: GossipConfig{Burst: 1, Interval: time.Hour}})
	defer a.Close()
	defer b.Close()
	b.Add(descFor(1))
	toB, _ := connect(a, b)
	if _, err := a.Sync(context.Background(), toB); !errors.Is(err, ErrRefused) {
		t.Fatalf("over the rate: %v", err) // the SUMMARY_REQ took the token, the IDS_REQ is refused
	}
	if st := a.Stats(); st.Syncing != 0 {
		t.Errorf("stats %+v", st)
	}
}

// A Sync ends when its link closes, when the directory closes, when its
// context ends, and when a newer Sync with the same peer replaces it.
func TestSyncEnds(t *testing.T) {
	dir := gossipDir(&fakeClock{now: t0}, Config{})
	silent := &pipe{}
	wait := func() {
		for range 1000 {
			if dir.Stats().Syncing > 0 {
				return
			}
			time.Sleep(time.Millisecond)
		}
		t.Fatal("sync never started")
	}
	errc := make(chan error, 1)
	go func() { _, err := dir.Sync(context.Background(), silent); errc <- err }()
	wait()
	dir.PeerClosed(silent)
	if err := <-errc; !errors.Is(err, ErrPeerClosed) {
		t.Errorf("closed link: %v", err)
	}
	go func() { _, err := dir.Sync(context.Background(), silent); errc <- err }()
	wait()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir.Sync(ctx, silent)
	if err := <-errc; !errors.Is(err, ErrSyncReplaced) {
		t.Errorf("replaced: %v", err)
	}
	go func() { _, err := dir.Sync(context.Background(), silent); errc <- err }()
	wait()
	dir.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Errorf("closed directory: %v", err)
	}
	if _, err := dir.Sync(context.Background(), silent); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}
