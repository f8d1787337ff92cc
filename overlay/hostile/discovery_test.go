package hostile

import (
	"fmt"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/circuit/protover"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
	"github.com/darkmatter/darkmatter/overlay/dir"
	"github.com/darkmatter/darkmatter/overlay/link"
	"github.com/darkmatter/darkmatter/overlay/transport"
	"github.com/darkmatter/darkmatter/overlay/transport/memnet"
)

// Hostile discovery peers (issue 12): relays that complete real
// handshakes and then answer the directory protocols (GOSSIP, DIR_GET)
// with thousands of descriptors, or flood DHT STOREs. Each test asserts
// the bound and that a legitimate client keeps working.

// dirAttacker is a relay of the attacker's, written from spec/ alone: it
// listens with its own keys, announces itself in HELLO from its own
// address, speaks Dir 1-3, and answers SUMMARY_REQ, IDS_REQ, WANT and
// DIR_GET from a directory stuffed with fake relays.
type dirAttacker struct {
	*fakeDirRelay
	fakes map[keys.NodeID]bool
}

// attackerProtocols are what the attacker's relay claims: a relay that
// gossips.
var attackerProtocols = link.Protocols(protover.New(map[protover.ID]string{protover.Relay: "1-2", protover.Dir: "1-3"}))

// fakeRelays returns count signed, fresh descriptors of relays that do not
// exist, at addr(i).
func fakeRelays(t testing.TB, network string, count int, addr func(i int) string) []*descriptor.Descriptor {
	t.Helper()
	out := make([]*descriptor.Descriptor, count)
	now := time.Now()
	for i := range out {
		var s [32]byte
		s[0], s[1], s[2], s[31] = byte(i), byte(i>>8), 0xa7, 9
		var s64 [64]byte
		copy(s64[:], s[:])
		k := &keys.NodeKeys{Identity: keys.IdentityFromSeed(s), Link: keys.LinkFromBytes(s), Onion: keys.OnionFromBytes(s), KEM: keys.KEMFromSeed(s64)}
		d := &descriptor.Descriptor{
			Network: network, Link: k.Link.Public(), Onion: k.Onion.Public(), OnionExpires: now.Add(24 * time.Hour),
			KEM: *k.KEM.Public(), Addrs: []string{addr(i)}, ExitPolicy: "reject *:*", Published: now,
		}
		d.Sign(k.Identity)
		pd, err := descriptor.Parse(d.Marshal())
		if err != nil {
			t.Fatal(err)
		}
		out[i] = pd
	}
	return out
}

// newDirAttacker starts the attacker's relay at ip (memnet) holding the
// fakes, and announces it to relay r with a HELLO from ip.
func (n *testNet) newDirAttacker(t testing.TB, ip string, r *overlay.Node, fakes []*descriptor.Descriptor) *dirAttacker {
	t.Helper()
	a := &dirAttacker{fakes: make(map[keys.NodeID]bool)}
	for _, f := range fakes {
		a.fakes[f.NodeID()] = true
	}
	a.fakeDirRelay = n.startFakeDirRelay(t, ip, r, attackerProtocols, func(l *link.Link) dir.Peer { return attackerPeer{l} }, fakes)
	return a
}

// attackerPeer is a link of the attacker's as its directory sees it.
type attackerPeer struct{ l *link.Link }

func (p attackerPeer) Send(c *cell.Cell) error { return p.l.Send(c) }
func (p attackerPeer) LinkQueueLen() int       { return p.l.QueueLen() }
func (p attackerPeer) Source() string          { return "attacker" }

// fakeDirRelay is a relay that is only a directory: real keys, a signed
// descriptor it announces by HELLO, links accepted on memnet, and the
// directory cells of each link handed to its directory as peer(link).
type fakeDirRelay struct {
	acceptor
	keys  *keys.NodeKeys
	desc  *descriptor.Descriptor
	hello []byte
	dir   *dir.Directory
	peer  func(*link.Link) dir.Peer
}

// startFakeDirRelay starts a fakeDirRelay at ip claiming protos and holding
// fakes, and announces it to relay r with a HELLO from ip.
func (n *testNet) startFakeDirRelay(t testing.TB, ip string, r *overlay.Node, protos protover.Set, peer func(*link.Link) dir.Peer, fakes []*descriptor.Descriptor) *fakeDirRelay {
	t.Helper()
	network := r.Descriptor().Network
	ln, err := n.mem.Host(ip).Listen(ip + ":7000")
	if err != nil {
		t.Fatal(err)
	}
	k, err := keys.GenerateNodeKeys(nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	d := &descriptor.Descriptor{
		Network: network, Link: k.Link.Public(), Onion: k.Onion.Public(), OnionExpires: now.Add(24 * time.Hour),
		KEM: *k.KEM.Public(), Addrs: []string{"mem://" + ip + ":7000"}, ExitPolicy: "reject *:*",
		Protocols: protos, Published: now,
	}
	d.Sign(k.Identity)
	hello := d.Marshal()
	pd, err := descriptor.Parse(hello)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeDirRelay{keys: k, desc: pd, hello: hello, peer: peer,
		dir: dir.New(dir.Config{Network: network, Admission: dir.RelaxedAdmission()})}
	f.dir.Add(pd)
	for _, fd := range fakes {
		if !f.dir.Add(fd) {
			t.Fatal("the fake relay's directory refused a fake")
		}
	}
	cfg := &link.Config{Network: network, Static: k.Link, Hello: hello, Protocols: protos}
	f.serve(ln, cfg, f)
	t.Cleanup(f.close)
	n.announceFake(t, ip, r, cfg, pd)
	return f
}

func (f *fakeDirRelay) HandleCell(l *link.Link, c *cell.Cell) {
	switch c.Cmd() {
	case cell.CmdDirGet, cell.CmdDirDesc, cell.CmdDirDone, cell.CmdGossip:
		f.dir.HandleCell(f.peer(l), c)
	default:
		c.Free()
	}
}

func (f *fakeDirRelay) Closed(l *link.Link, _ error) { f.dir.PeerClosed(f.peer(l)) }

func (f *fakeDirRelay) close() {
	f.acceptor.close()
	f.dir.Close()
}

// held counts the attacker's fakes n lists.
func (a *dirAttacker) held(n *overlay.Node) int {
	k := 0
	for _, d := range n.Relays() {
		if a.fakes[d.NodeID()] {
			k++
		}
	}
	return k
}

// listed reports whether n lists the relay d describes.
func listed(n *overlay.Node, d *descriptor.Descriptor) bool {
	for _, x := range n.Relays() {
		if x.Identity == d.Identity {
			return true
		}
	}
	return false
}

// addRelay starts an honest relay at ip (memnet), bootstrapped from relay
// 0, gossiping like the others.
func (n *testNet) addRelay(t testing.TB, ip string, tune func(*overlay.Config)) *overlay.Node {
	t.Helper()
	cfg := overlay.Config{
		Network:    n.relays[0].Descriptor().Network,
		Transports: transport.Registry{memnet.Scheme: n.mem.Host(ip)},
		Listen:     []string{memnet.Scheme + "://" + ip + ":7000"},
		Bootstrap:  []descriptor.Bootstrap{n.relays[0].Bootstrap()},
	}
	if tune != nil {
		tune(&cfg)
	}
	r, err := overlay.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if err := r.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	return r
}

// gossipFast makes relays gossip every second. (One Sync round costs a
// peer about three gossip requests, and a link may make one per
// dir.DefaultGossipInterval after a burst: gossiping much faster with
// the few relays of a test network only draws BUSY.)
func gossipFast(_ int, cfg *overlay.Config) { cfg.Gossip = time.Second }

// An attacker relay whose GOSSIP answers offer thousands of descriptors
// (one source, each fake in a /16 of its own so that only the source limit
// can stop them) to the victim relay that gossips with it: honest relays started afterwards are listed by the victim and by a
// fresh client; the legitimate client keeps working. The victim that heard
// of them from the attacker alone holds at most dir.DefaultPerSource;
// another relay holds at most that many from each source that offered
// them (the attacker, and relays that hold some), never all.
func TestDirectoryFillByGossip(t *testing.T) {
	const count = 2000
	n := newNet(t, "mem", netConfig{relay: gossipFast})
	victim := n.relays[2]
	network := victim.Descriptor().Network
	fakes := fakeRelays(t, network, count, func(i int) string { return fmt.Sprintf("mem://%d.%d.0.1:7000", 30+i/250, 1+i%250) })
	a := n.newDirAttacker(t, "15.0.0.1", victim, fakes)
	// The victim takes the source's quota and no more: it does not even
	// ask for the rest (spec/gossip.md §5).
	waitFor(t, 20*time.Second, "the victim to reach the source limit", func() bool {
		return a.held(victim) >= dir.DefaultPerSource
	})
	honest := []*overlay.Node{n.addRelay(t, "11.20.0.1", func(c *overlay.Config) { gossipFast(0, c) }),
		n.addRelay(t, "11.21.0.1", func(c *overlay.Config) { gossipFast(0, c) })}
	waitFor(t, 30*time.Second, "the victim to list the honest relays started after the attack", func() bool {
		return listed(victim, honest[0].Descriptor()) && listed(victim, honest[1].Descriptor())
	})
	// A relay hears of the fakes from the attacker (every relay learns
	// the attacker's relay and may gossip with it) and from each relay
	// that holds some: at most the source limit from each, never all.
	all := append(n.relays, honest...)
	for i, r := range all {
		got := a.held(r)
		t.Logf("relay %d holds %d fakes", i, got)
		if got > dir.DefaultPerSource*len(all) {
			t.Errorf("relay %d holds %d of the attacker's %d descriptors, want at most %d", i, got, count, dir.DefaultPerSource*len(all))
		}
	}
	t.Logf("victim: %d relays, admission %+v", len(victim.Relays()), victim.Stats().Dir.Admit)
	n.legit(t, 10*time.Second)
	t.Run("client", func(t *testing.T) {
		// A fresh client takes the whole list from the relays it chose
		// (its bootstrap relay, then its primary guards: dir.ChooseSource),
		// so it lists every honest relay of a network of any size, and
		// never more fakes than those relays hold.
		c, err := overlay.New(overlay.Config{Network: network, Transports: transport.Registry{memnet.Scheme: n.mem.Host("13.0.0.7")},
			Bootstrap: []descriptor.Bootstrap{victim.Bootstrap()}, Preemptive: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Start(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		for _, h := range append(n.relays, honest...) {
			if !listed(c, h.Descriptor()) {
				t.Errorf("the fresh client does not list an honest relay")
			}
		}
		most := 0
		for _, r := range all {
			most = max(most, a.held(r))
		}
		if got := a.held(c); got > most {
			t.Errorf("the fresh client holds %d of the attacker's descriptors, more than any relay (%d)", got, most)
		}
	})
}
