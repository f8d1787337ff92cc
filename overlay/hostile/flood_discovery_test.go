package hostile

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/circuit/protover"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
	"github.com/darkmatter/darkmatter/overlay/dht"
	"github.com/darkmatter/darkmatter/overlay/dir"
	"github.com/darkmatter/darkmatter/overlay/link"
	"github.com/darkmatter/darkmatter/overlay/transport"
)

// More hostile discovery peers (issue 12): descriptors crowding one
// network block, STORE floods over a link, and descriptors and records
// that are stale or forged. Each test asserts the bound and that
// legitimate nodes keep working.

// inPrefix counts the relays n lists with an address in p.
func inPrefix(n *overlay.Node, p netip.Prefix) int {
	k := 0
	for _, d := range n.Relays() {
		for _, a := range d.Addrs {
			ta, err := transport.ParseAddr(a)
			if err != nil {
				continue
			}
			ap, err := netip.ParseAddrPort(ta.HostPort)
			if err == nil && p.Contains(ap.Addr()) {
				k++
				break
			}
		}
	}
	return k
}

// Attacker relays at three addresses of one /16 offer (by gossip) 300
// descriptors advertising addresses in that /16, 60 of them in one /24:
// every relay and a fresh client list at most dir.DefaultPerSlash16 relays
// of the /16 and dir.DefaultPerSlash24 of the /24, the victim counts the
// refusals, honest relays started afterwards are listed, and the
// legitimate client keeps working.
func TestDescriptorFloodOneSubnet(t *testing.T) {
	n := newNet(t, "mem", netConfig{relay: gossipFast})
	victim := n.relays[2]
	network := victim.Descriptor().Network
	slash16 := netip.MustParsePrefix("40.1.0.0/16")
	slash24 := netip.MustParsePrefix("40.1.5.0/24")
	fakes := fakeRelays(t, network, 300, func(i int) string {
		if i < 60 {
			return fmt.Sprintf("mem://40.1.5.%d:7000", i+1)
		}
		return fmt.Sprintf("mem://40.1.%d.%d:7000", 10+i/100, 1+i%100)
	})
	// The attacker relays are announced before they hold the fakes, so
	// that all three get in before the /16 is full.
	var as []*dirAttacker
	for _, ip := range []string{"40.1.200.1", "40.1.201.1", "40.1.202.1"} {
		as = append(as, n.newDirAttacker(t, ip, victim, nil))
	}
	for _, a := range as {
		for _, f := range fakes {
			if !a.dir.Add(f) {
				t.Fatal("the attacker's directory refused a fake")
			}
			a.fakes[f.NodeID()] = true
		}
	}
	waitFor(t, 20*time.Second, "the victim to fill the /16 and refuse the rest", func() bool {
		return inPrefix(victim, slash16) >= dir.DefaultPerSlash16 && victim.Stats().Dir.Admit.Subnet > 0
	})
	honest := []*overlay.Node{n.addRelay(t, "11.30.0.1", func(c *overlay.Config) { gossipFast(0, c) }),
		n.addRelay(t, "11.31.0.1", func(c *overlay.Config) { gossipFast(0, c) })}
	waitFor(t, 30*time.Second, "the victim to list the honest relays started after the attack", func() bool {
		return listed(victim, honest[0].Descriptor()) && listed(victim, honest[1].Descriptor())
	})
	c := n.freshClient(t, "13.0.0.8", victim)
	for _, h := range append(append([]*overlay.Node{}, n.relays...), honest...) {
		if !listed(c, h.Descriptor()) {
			t.Errorf("the fresh client does not list an honest relay")
		}
	}
	for i, r := range append(append(append([]*overlay.Node{}, n.relays...), honest...), n.client, c) {
		in16, in24 := inPrefix(r, slash16), inPrefix(r, slash24)
		t.Logf("node %d: %d relays, %d in the /16, %d in the /24, admission %+v", i, len(r.Relays()), in16, in24, r.Stats().Dir.Admit)
		if in16 > dir.DefaultPerSlash16 || in24 > dir.DefaultPerSlash24 {
			t.Errorf("node %d lists %d relays in the attacker's /16 and %d in its /24, want at most %d and %d",
				i, in16, in24, dir.DefaultPerSlash16, dir.DefaultPerSlash24)
		}
	}
	n.legit(t, 10*time.Second)
}

// freshClient starts a client at ip bootstrapped from r.
func (n *testNet) freshClient(t testing.TB, ip string, r *overlay.Node) *overlay.Node {
	t.Helper()
	c, err := overlay.New(overlay.Config{Network: r.Descriptor().Network, Transports: transport.Registry{"mem": n.mem.Host(ip)},
		Bootstrap: []descriptor.Bootstrap{r.Bootstrap()}, Preemptive: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	return c
}

// dhtLink is a raw link of the attacker's that sends DHT requests as
// linkrpc fragments (spec/linkrpc.md §1) and counts the answers: refusals
// (REFUSED) and STORED answers by status.
type dhtLink struct {
	*link.Link
	refused  atomic.Int64
	status   [256]atomic.Int64
	answered atomic.Int64
	bad      atomic.Int64 // answers that do not decode
}

func (n *testNet) dhtLink(t testing.TB, ip string, r *overlay.Node) *dhtLink {
	t.Helper()
	dl := &dhtLink{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, err := transport.ParseAddr(n.relayAddr(r))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := n.host(ip).Dial(ctx, a.HostPort)
	if err != nil {
		t.Fatal(err)
	}
	dl.Link, err = link.Dial(ctx, conn, &link.Config{Network: r.Descriptor().Network}, r.Descriptor().Link, dl)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dl.Close() })
	return dl
}

func (dl *dhtLink) HandleCell(_ *link.Link, c *cell.Cell) {
	defer c.Free()
	if c.Cmd() != cell.CmdDHT {
		return
	}
	b := c.Body()
	flags, size := b[4], int(binary.BigEndian.Uint16(b[5:7])) // after the id (4)
	if flags&1 == 0 || 7+size > len(b) {
		dl.bad.Add(1)
		return
	}
	dl.answered.Add(1)
	if flags&4 != 0 {
		dl.refused.Add(1)
		return
	}
	m, err := dht.ParseMessage(b[7 : 7+size])
	if err != nil || m.Kind != dht.KindStored {
		dl.bad.Add(1)
		return
	}
	dl.status[m.Status].Add(1)
}

func (dl *dhtLink) Closed(*link.Link, error) {}

// store sends a STORE of r as request id, in one fragment, waiting while
// the link's own queue is long.
func (dl *dhtLink) store(t testing.TB, id uint32, r *dht.Record) error {
	req, err := (&dht.Message{Kind: dht.KindStore, ID: uint64(id), Records: []*dht.Record{r}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if len(req) > cell.BodyLen-7 {
		t.Fatalf("a STORE of %d bytes needs more than one fragment", len(req))
	}
	for dl.QueueLen() > 64 {
		time.Sleep(time.Millisecond)
	}
	c := cell.New(0, cell.CmdDHT)
	b := c.Body()
	clear(b)
	binary.BigEndian.PutUint32(b, id)
	binary.BigEndian.PutUint16(b[5:7], uint16(len(req)))
	copy(b[7:], req)
	return dl.Send(c)
}

// An attacker on two links from one address sends 3,000 STOREs of valid,
// self-signed records (of many owners) to a victim relay for about four
// seconds: the victim stores at most dht's StoreBurst (30) and then one a
// second (60 a minute) from that source, answering every other STORE with
// a rate refusal or a linkrpc REFUSED; its counters and store agree with
// its answers. Afterwards a legitimate relay's DHTPut is stored by the
// victim, the legitimate client's DHTGet finds it, and streams work.
func TestDHTStoreFloodOverLinks(t *testing.T) {
	const (
		stores        = 3000
		burst, perSec = 30, 1.0 // dht.StoreLimits defaults
	)
	n := newNet(t, "mem", netConfig{relay: func(i int, c *overlay.Config) { gossipFast(i, c); c.DHTMinAge = -1 }})
	victim := n.relays[2]
	network := victim.Descriptor().Network
	recs := make([]*dht.Record, stores)
	for i := range recs {
		owner, err := keys.GenerateIdentity(nil)
		if err != nil {
			t.Fatal(err)
		}
		if recs[i], err = dht.NewSigned(network, owner, fmt.Sprintf("flood-%d", i), []byte("x"), 1, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	links := []*dhtLink{n.dhtLink(t, "14.0.9.1", victim), n.dhtLink(t, "14.0.9.1", victim)}
	before := victim.DHTStats()
	start := time.Now()
	pace := time.NewTicker(time.Second * 4 / stores * 2) // two STOREs a tick, about 4 s in all
	for i := 0; i < stores; i += 2 {
		for j, dl := range links {
			if err := dl.store(t, uint32(i+j+1), recs[i+j]); err != nil {
				t.Fatalf("STORE %d: %v", i+j, err)
			}
		}
		<-pace.C
	}
	pace.Stop()
	answered := func() int64 {
		k := int64(0)
		for _, dl := range links {
			k += dl.answered.Load()
		}
		return k
	}
	waitFor(t, 10*time.Second, "every STORE to be answered", func() bool { return answered() == stores })
	elapsed := time.Since(start)
	var stored, rate, refused, other int64
	for _, dl := range links {
		stored += dl.status[dht.Stored].Load()
		rate += dl.status[dht.ReasonRate].Load()
		refused += dl.refused.Load()
		if dl.bad.Load() > 0 {
			t.Errorf("%d answers did not decode", dl.bad.Load())
		}
	}
	other = stores - stored - rate - refused
	after := victim.DHTStats()
	t.Logf("%d STOREs in %v: %d stored, %d rate-refused, %d REFUSED by linkrpc, %d other; victim holds %d records (%d bytes)",
		stores, elapsed.Round(time.Millisecond), stored, rate, refused, other, after.RecordsStored, after.BytesStored)
	most := int64(burst + perSec*elapsed.Seconds() + 1)
	if stored > most || stored < burst {
		t.Errorf("the victim stored %d STOREs of one source in %v, want %d..%d (the burst, then the rate)", stored, elapsed, burst, most)
	}
	if other != 0 {
		t.Errorf("%d STOREs answered with another status", other)
	}
	if got := after.Refused[dht.Stored] - before.Refused[dht.Stored]; int64(got) != stored {
		t.Errorf("the victim counts %d stores accepted, it answered %d", got, stored)
	}
	if got := after.Refused[dht.ReasonRate] - before.Refused[dht.ReasonRate]; int64(got) != rate {
		t.Errorf("the victim counts %d rate refusals, it answered %d", got, rate)
	}
	if got := after.RecordsStored - before.RecordsStored; int64(got) != stored {
		t.Errorf("the victim holds %d more records, it stored %d", got, stored)
	}
	// A legitimate relay's Put is stored by the victim (another source),
	// and the legitimate client finds the record through its circuit.
	owner, err := keys.GenerateIdentity(nil)
	if err != nil {
		t.Fatal(err)
	}
	good, err := dht.NewSigned(network, owner, "legit", []byte("v"), 1, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	// (A relay adds the relays it learns by HELLO to its DHT table at its
	// next gossip round: retry until the victim is among them.)
	waitFor(t, 10*time.Second, "the victim to store the legitimate relay's record", func() bool {
		if k, err := n.relays[1].DHTPut(ctx, good); err != nil || k < 2 {
			t.Fatalf("the legitimate relay's Put: %d stored, %v", k, err)
		}
		return victim.DHTStats().Refused[dht.Stored] > after.Refused[dht.Stored]
	})
	if got, err := n.client.DHTGet(ctx, dht.TypeSigned, good.Key); err != nil || len(got) != 1 || got[0].Owner != good.Owner {
		t.Fatalf("the legitimate client's Get: %d records, %v", len(got), err)
	}
	n.legit(t, 10*time.Second)
}

// forger is a relay of the attacker's that speaks the directory protocols
// from a directory of valid fakes, but sends, in place of each fake's
// descriptor (in a gossip DESC or a DIR_DESC), the bytes swap holds for
// it: a stale or forged version, or garbage.
type forger struct {
	*fakeDirRelay
	swap map[string][]byte // a fake's descriptor → what is sent instead; read-only once started
	sent atomic.Int64      // swapped descriptors sent
}

// newForger starts a forger at ip claiming protos (Dir 1-3 gossips, Dir
// 1-2 only answers DIR_GET), holding each key of swap as a fake, and
// announces it to relay r by a HELLO.
func (n *testNet) newForger(t testing.TB, ip string, r *overlay.Node, protos protover.Set, swap map[string][]byte) *forger {
	t.Helper()
	f := &forger{swap: swap}
	var fakes []*descriptor.Descriptor
	for raw := range swap {
		fd, err := descriptor.Parse([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		fakes = append(fakes, fd)
	}
	f.fakeDirRelay = n.startFakeDirRelay(t, ip, r, link.Protocols(protos), func(l *link.Link) dir.Peer { return forgerPeer{f, l} }, fakes)
	return f
}

// forgerPeer is a forger's link as its directory sees it: it swaps the
// descriptors it sends.
type forgerPeer struct {
	f *forger
	l *link.Link
}

func (p forgerPeer) Send(c *cell.Cell) error {
	pl, err := c.Payload()
	if err != nil {
		return p.l.Send(c)
	}
	var out []byte
	switch {
	case c.Cmd() == cell.CmdDirDesc:
		if s, ok := p.f.swap[string(pl)]; ok {
			out = s
		}
	case c.Cmd() == cell.CmdGossip && len(pl) > 1 && pl[0] == 6: // DESC
		if s, ok := p.f.swap[string(pl[1:])]; ok {
			out = append([]byte{6}, s...)
		}
	}
	if out == nil {
		return p.l.Send(c)
	}
	p.f.sent.Add(1)
	clear(c.Body())
	if err := c.SetPayload(out); err != nil {
		c.Free()
		return err
	}
	return p.l.Send(c)
}
func (p forgerPeer) LinkQueueLen() int { return p.l.QueueLen() }
func (p forgerPeer) Source() string    { return "forger" }

// forgery is one way a descriptor can be unacceptable.
type forgery struct {
	name string
	make func(t testing.TB, k *keys.NodeKeys, network, addr string) []byte
}

// descBytes signs a descriptor of k at addr, adjusted by tune.
func descBytes(k *keys.NodeKeys, network, addr string, tune func(d *descriptor.Descriptor)) []byte {
	now := time.Now()
	d := &descriptor.Descriptor{
		Network: network, Link: k.Link.Public(), Onion: k.Onion.Public(), OnionExpires: now.Add(24 * time.Hour),
		KEM: *k.KEM.Public(), Addrs: []string{addr}, ExitPolicy: "reject *:*", Published: now,
	}
	if tune != nil {
		tune(d)
	}
	d.Sign(k.Identity)
	return d.Marshal()
}

var forgeries = []forgery{
	{"published 25 h ago", func(_ testing.TB, k *keys.NodeKeys, network, addr string) []byte {
		return descBytes(k, network, addr, func(d *descriptor.Descriptor) { d.Published = d.Published.Add(-25 * time.Hour) })
	}},
	{"onion key expired", func(_ testing.TB, k *keys.NodeKeys, network, addr string) []byte {
		return descBytes(k, network, addr, func(d *descriptor.Descriptor) { d.OnionExpires = d.Published.Add(-time.Minute) })
	}},
	{"published 2 h ahead", func(_ testing.TB, k *keys.NodeKeys, network, addr string) []byte {
		return descBytes(k, network, addr, func(d *descriptor.Descriptor) { d.Published = d.Published.Add(2 * time.Hour) })
	}},
	{"another network", func(_ testing.TB, k *keys.NodeKeys, _, addr string) []byte {
		return descBytes(k, "another-network", addr, nil)
	}},
	{"broken signature", func(_ testing.TB, k *keys.NodeKeys, network, addr string) []byte {
		b := descBytes(k, network, addr, nil)
		b[len(b)-1] ^= 1
		return b
	}},
	{"garbage", func(t testing.TB, _ *keys.NodeKeys, _, _ string) []byte {
		b := make([]byte, 700)
		rand.Read(b)
		return b
	}},
	{"oversize", func(t testing.TB, _ *keys.NodeKeys, _, _ string) []byte {
		b := make([]byte, descriptor.MaxSize+70)
		rand.Read(b)
		return b
	}},
}

// An attacker's relays offer stale and forged descriptors — published
// too long ago or too far ahead, with an expired onion key, of another
// network, with a broken signature, garbage, oversize — by gossip (to a
// victim relay that gossips with them), in DIR_GET answers (to a new relay
// bootstrapped from the attacker), and in HELLO (raw links from the
// address each names): none is listed, by any node; the victims count the
// refusals; honest relays stay listed and the legitimate client works.
func TestStaleAndForgedDescriptors(t *testing.T) {
	const each = 4 // fakes per forgery and route
	n := newNet(t, "mem", netConfig{relay: gossipFast})
	victim := n.relays[2]
	network := victim.Descriptor().Network
	var forged []keys.IdentityPublicKey // identities of the forged descriptors that have one
	swaps := func(base int) map[string][]byte {
		swap := make(map[string][]byte)
		for i, fg := range forgeries {
			for j := range each {
				k, err := keys.GenerateNodeKeys(nil)
				if err != nil {
					t.Fatal(err)
				}
				addr := fmt.Sprintf("mem://%d.%d.0.1:7000", 50+base, 1+i*each+j) // a /16 each
				swap[string(descBytes(k, network, addr, nil))] = fg.make(t, k, network, addr)
				forged = append(forged, k.Identity.Public())
			}
		}
		return swap
	}
	anyForged := func(r *overlay.Node) int {
		held := make(map[keys.IdentityPublicKey]bool)
		for _, d := range r.Relays() {
			held[d.Identity] = true
		}
		k := 0
		for _, id := range forged {
			if held[id] {
				k++
			}
		}
		return k
	}
	total := func(s dir.Stats) uint64 {
		return s.Bad + s.GossipMalformed + s.Admit.Stale + s.Admit.Network + s.GossipUnsolicited
	}

	// Gossip.
	before := victim.Stats().Dir
	gswap := swaps(0)
	g := n.newForger(t, "15.0.0.2", victim, protover.New(map[protover.ID]string{protover.Relay: "1-2", protover.Dir: "1-3"}), gswap)
	waitFor(t, 20*time.Second, "the forger to send every forgery by gossip", func() bool { return g.sent.Load() >= int64(len(gswap)) })
	waitFor(t, 10*time.Second, "the victim to count the refusals", func() bool {
		return total(victim.Stats().Dir)-total(before) >= uint64(len(gswap))
	})
	after := victim.Stats().Dir
	t.Logf("gossip: %d forgeries sent (to any relay); the victim: bad %d, malformed %d, stale %d, network %d, unsolicited %d",
		g.sent.Load(), after.Bad-before.Bad, after.GossipMalformed-before.GossipMalformed, after.Admit.Stale-before.Admit.Stale,
		after.Admit.Network-before.Admit.Network, after.GossipUnsolicited-before.GossipUnsolicited)

	// DIR_GET answers, to a relay that starts from the forger alone.
	dswap := swaps(1)
	d := n.newForger(t, "15.0.0.3", victim, protover.New(map[protover.ID]string{protover.Relay: "1-2", protover.Dir: "1-2"}), dswap)
	fresh := n.addRelayFrom(t, "11.40.0.1", descriptor.Bootstrap{Identity: d.desc.Identity, Link: d.desc.Link, Addr: d.desc.Addrs[0]})
	if d.sent.Load() < int64(len(dswap)) {
		t.Errorf("the forger sent %d of %d forgeries in its DIR_GET answer", d.sent.Load(), len(dswap))
	}
	if got := total(fresh.Stats().Dir); got < uint64(len(dswap)) {
		t.Errorf("the relay bootstrapped from the forger counts %d refusals, %d forgeries were sent: %+v", got, len(dswap), fresh.Stats().Dir)
	}
	t.Logf("DIR_GET: the new relay's stats %+v", fresh.Stats().Dir)

	// HELLO, each from the address its descriptor names.
	hbefore, links := victim.Stats(), 0
	for i, fg := range forgeries[:5] { // garbage does not make a HELLO
		ip := fmt.Sprintf("16.%d.0.1", i+1)
		k, err := keys.GenerateNodeKeys(nil)
		if err != nil {
			t.Fatal(err)
		}
		forged = append(forged, k.Identity.Public())
		hello := fg.make(t, k, network, "mem://"+ip+":7000")
		p := n.newPeer(t, "attacker", ip)
		hl, err := p.rawTo(n.relayAddr(victim), victim.Descriptor().Link, &link.Config{Network: network, Static: k.Link, Hello: hello})
		if err != nil {
			t.Logf("HELLO %s: %v", fg.name, err)
			continue
		}
		hl.sync(t)
		hl.Close()
		links++
	}
	hafter := victim.Stats()
	refusedHello := total(hafter.Dir) - total(hbefore.Dir) + hafter.Links.FailedHandshakes - hbefore.Links.FailedHandshakes
	t.Logf("HELLO: %d links completed; the victim counts %d refusals (dir %+v)", links, refusedHello, hafter.Dir.Admit)
	// The stale ones and the other network's are counted by admission; a
	// HELLO descriptor that does not verify makes the link a client's
	// (linkmgr.Link.Descriptor), uncounted, and so does, it seems, one
	// from the future.
	if refusedHello < 3 {
		t.Errorf("the victim counts %d refusals of 5 forged HELLO descriptors, want at least the 3 stale or of another network", refusedHello)
	}

	for i, r := range append(append([]*overlay.Node{}, n.relays...), fresh, n.client) {
		if got := anyForged(r); got > 0 {
			t.Errorf("node %d lists %d forged or stale descriptors", i, got)
		}
	}
	for _, h := range n.relays {
		if !listed(victim, h.Descriptor()) {
			t.Errorf("the victim no longer lists an honest relay")
		}
	}
	n.legit(t, 10*time.Second)
}

// addRelayFrom starts an honest relay at ip bootstrapped from b alone.
func (n *testNet) addRelayFrom(t testing.TB, ip string, b descriptor.Bootstrap) *overlay.Node {
	t.Helper()
	return n.addRelay(t, ip, func(c *overlay.Config) {
		c.Bootstrap = []descriptor.Bootstrap{b}
		gossipFast(0, c)
	})
}
