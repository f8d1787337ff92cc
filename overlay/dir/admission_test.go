package dir

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
)

// descAt returns relay i's descriptor on "net", published at pub, with
// the given addresses.
func descAt(t testing.TB, i int, pub time.Time, addrs ...string) *descriptor.Descriptor {
	t.Helper()
	k := relayKeys(i)
	d := &descriptor.Descriptor{
		Network: "net", Link: k.Link.Public(), Onion: k.Onion.Public(), OnionExpires: pub.Add(7 * 24 * time.Hour),
		KEM: *k.KEM.Public(), Addrs: addrs, ExitPolicy: "reject *:*", Published: pub,
	}
	d.Sign(k.Identity)
	p, err := descriptor.Parse(d.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newNet(cfg Config) *Directory {
	cfg.Network = "net"
	if cfg.Now == nil {
		cfg.Now = (&fakeClock{now: t0}).Now
	}
	return New(cfg)
}

// The default rules cap relays per IPv4 /24 and /16 and IPv6 /48 and /32,
// counting every advertised address; the relaxed rules do not; Add
// (trusted input) is not capped.
func TestSubnetCaps(t *testing.T) {
	type offer struct {
		addrs []string
		ok    bool
	}
	var slash24, slash16, slash48, slash32, domain []offer
	for i := range 5 {
		slash24 = append(slash24, offer{[]string{fmt.Sprintf("192.0.2.%d:9001", i+1)}, i < 4})
		slash48 = append(slash48, offer{[]string{fmt.Sprintf("[2001:db8:1::%d]:9001", i+1)}, i < 4})
		domain = append(domain, offer{[]string{fmt.Sprintf("r%d.Example.org:9001", i)}, i < 4})
	}
	for i := range 17 {
		slash16 = append(slash16, offer{[]string{fmt.Sprintf("10.7.%d.1:9001", i)}, i < 16})
		slash32 = append(slash32, offer{[]string{fmt.Sprintf("[2001:db8:%x::1]:9001", i+16)}, i < 16})
	}
	// A second address in a full /24 refuses the relay, though its first
	// address is in a free block.
	mixed := append(slash24[:4:4], offer{[]string{"198.18.0.1:9001", "192.0.2.77:9001"}, false})
	for name, offers := range map[string][]offer{"/24": slash24, "/16": slash16, "/48": slash48, "/32": slash32, "domain": domain, "second address": mixed} {
		strict, relaxed, trusted := newNet(Config{}), newNet(Config{Admission: RelaxedAdmission()}), newNet(Config{})
		for i, o := range offers {
			d := descAt(t, 100+i, t0, o.addrs...)
			src := fmt.Sprintf("198.51.%d.1", i) // a new source each time
			ok, why := strict.AddFrom(d, src)
			if ok != o.ok {
				t.Errorf("%s: relay %d %v: AddFrom = %v, %v; want %v", name, i, o.addrs, ok, why, o.ok)
			}
			if !ok && !errors.Is(why, ErrSubnetFull) {
				t.Errorf("%s: refused for %v, want ErrSubnetFull", name, why)
			}
			if ok, why := relaxed.AddFrom(d, src); !ok {
				t.Errorf("%s: relaxed refused relay %d: %v", name, i, why)
			}
			if !trusted.Add(d) {
				t.Errorf("%s: Add refused relay %d", name, i)
			}
		}
		if st := strict.Stats().Admit; st.Subnet != 1 {
			t.Errorf("%s: Subnet refusals %d, want 1", name, st.Subnet)
		}
	}
}

// Loopback relays introduced by a loopback peer (a test network on one
// host) are not capped; introduced by a remote peer they are.
func TestLoopbackFromLoopback(t *testing.T) {
	dir := newNet(Config{})
	for i := range 8 {
		if ok, why := dir.AddFrom(descAt(t, i, t0, fmt.Sprintf("127.0.0.1:%d", 9000+i)), "127.0.0.1"); !ok {
			t.Fatalf("relay %d: %v", i, why)
		}
	}
	for i := range 8 {
		ok, _ := dir.AddFrom(descAt(t, 50+i, t0, fmt.Sprintf("127.0.0.1:%d", 9100+i)), "203.0.113.9")
		if ok {
			t.Fatalf("a remote source added loopback relay %d beyond the cap", i)
		}
	}
}

// One source holds at most PerSource unconfirmed relays. A second source
// of another /16 confirms a relay (and frees the first source's quota), a
// source of the same /16 does not; Confirm does; updates are always taken.
func TestSourceLimit(t *testing.T) {
	dir := newNet(Config{Admission: Admission{PerSource: 3}})
	a := "198.51.100.1"
	ds := make([]*descriptor.Descriptor, 6)
	for i := range ds {
		ds[i] = descAt(t, i, t0, addrFor(i))
	}
	for i, d := range ds[:5] {
		ok, why := dir.AddFrom(d, a)
		if want := i < 3; ok != want || (!ok && !errors.Is(why, ErrSourceLimit)) {
			t.Fatalf("relay %d: %v, %v", i, ok, why)
		}
	}
	// Same /16 as a: no confirmation.
	dir.AddFrom(ds[0], "198.51.7.7")
	if info, _ := dir.Info(ds[0].NodeID()); info.Confirmed {
		t.Fatal("a source of the same /16 confirmed")
	}
	if ok, _ := dir.AddFrom(ds[3], a); ok {
		t.Fatal("still at the limit, yet took a fourth")
	}
	// Another /16 confirms relay 0 although it offers no newer descriptor.
	if ok, why := dir.AddFrom(ds[0], "203.0.113.5"); ok || !errors.Is(why, ErrNotNewer) {
		t.Fatalf("second offer: %v, %v", ok, why)
	}
	info, ok := dir.Info(ds[0].NodeID())
	if !ok || !info.Confirmed || info.Source != a || !info.FirstSeen.Equal(t0) {
		t.Fatalf("info %+v", info)
	}
	if ok, why := dir.AddFrom(ds[3], a); !ok {
		t.Fatalf("confirmation freed no quota: %v", why)
	}
	dir.Confirm(ds[1].NodeID())
	if ok, why := dir.AddFrom(ds[4], a); !ok {
		t.Fatalf("Confirm freed no quota: %v", why)
	}
	if ok, _ := dir.AddFrom(ds[5], a); ok {
		t.Fatal("over the limit again")
	}
	// An update of a known relay is taken from the source at its limit.
	if ok, why := dir.AddFrom(descAt(t, 2, t0.Add(time.Minute), addrFor(2)), a); !ok {
		t.Fatalf("update refused: %v", why)
	}
	if st := dir.Stats().Admit; st.Source != 4 || st.Confirmed != 2 || st.Updated != 1 || st.Added != 5 {
		t.Errorf("stats %+v", st)
	}
}

// Full, a directory keeps its confirmed, reliable relays against any
// flood; a newcomer evicts the unreliable ones first, then the unconfirmed
// ones of the source that holds the most.
func TestEvictionPrefersAgedReliable(t *testing.T) {
	clk := &fakeClock{now: t0}
	dir := New(Config{Network: "net", MaxRelays: 10, Now: clk.Now})
	var honest []keys.NodeID
	for i := range 8 {
		d := descAt(t, i, t0, addrFor(i))
		if ok, why := dir.AddFrom(d, "198.51.100.1"); !ok {
			t.Fatal(why)
		}
		dir.Confirm(d.NodeID())
		dir.NoteReachable(d.NodeID(), true)
		honest = append(honest, d.NodeID())
	}
	clk.Set(t0.Add(time.Hour))
	// A flood from one source: 2 slots free, then everything refused,
	// except that its own newcomers replace its own entries.
	for i := range 40 {
		dir.AddFrom(descAt(t, 1000+i, t0.Add(time.Hour), addrFor(1000+i)), "203.0.113.66")
	}
	for _, id := range honest {
		if dir.Get(id) == nil {
			t.Fatal("the flood evicted an aged, confirmed relay")
		}
	}
	if dir.Len() != 10 {
		t.Fatalf("%d relays", dir.Len())
	}
	// An honest newcomer from another source evicts a flood entry.
	clk.Set(t0.Add(2 * time.Hour))
	newcomer := descAt(t, 500, t0.Add(2*time.Hour), addrFor(500))
	if ok, why := dir.AddFrom(newcomer, "192.0.2.200"); !ok {
		t.Fatalf("newcomer refused: %v", why)
	}
	dir.Confirm(newcomer.NodeID())
	// Now every entry but one flood entry is confirmed and reliable.
	last := descAt(t, 501, t0.Add(2*time.Hour), addrFor(501))
	if ok, why := dir.AddFrom(last, "192.0.2.201"); !ok {
		t.Fatalf("second newcomer refused: %v", why)
	}
	dir.Confirm(last.NodeID())
	if ok, why := dir.AddFrom(descAt(t, 502, t0.Add(2*time.Hour), addrFor(502)), "192.0.2.202"); ok || !errors.Is(why, ErrFull) {
		t.Fatalf("a full directory of confirmed relays took a newcomer: %v %v", ok, why)
	}
	// Relay 3 turns unreliable (failures > successes+2): a newcomer may
	// take its place; the others stay.
	for range 4 {
		dir.NoteReachable(honest[3], false)
	}
	if ok, why := dir.AddFrom(descAt(t, 503, t0.Add(2*time.Hour), addrFor(503)), "192.0.2.203"); !ok {
		t.Fatalf("newcomer refused with an unreliable relay to evict: %v", why)
	}
	if dir.Get(honest[3]) != nil {
		t.Error("the unreliable relay was kept")
	}
	for i, id := range honest {
		if i != 3 && dir.Get(id) == nil {
			t.Errorf("relay %d evicted", i)
		}
	}
	info, _ := dir.Info(honest[0])
	if !info.FirstSeen.Equal(t0) || info.Successes != 1 {
		t.Errorf("info %+v", info)
	}
	if st := dir.Stats().Admit; st.Evicted < 3 || st.Full == 0 {
		t.Errorf("stats %+v", st)
	}
}

// The attack of issue 12: one source offers 4,264 descriptors (each
// claiming its own /16). A fresh directory keeps at most PerSource of
// them, and honest relays from another source still get in.
func TestOneSourceCannotFillDirectory(t *testing.T) {
	if testing.Short() {
		t.Skip("signs 4,264 descriptors")
	}
	dir := newNet(Config{})
	const attack = 4264
	taken := 0
	for i := range attack {
		if ok, _ := dir.AddFrom(descAt(t, 10000+i, t0, addrFor(i)), "203.0.113.66"); ok {
			taken++
		}
	}
	if taken != DefaultPerSource {
		t.Errorf("the attacker placed %d relays, want %d", taken, DefaultPerSource)
	}
	for i := range 50 {
		d := descAt(t, i, t0, fmt.Sprintf("%d.%d.0.1:9001", 100+i/256, i%256))
		if ok, why := dir.AddFrom(d, "192.0.2.10"); !ok {
			t.Fatalf("honest relay %d refused: %v", i, why)
		}
	}
	if st := dir.Stats().Admit; st.Source != attack-DefaultPerSource {
		t.Errorf("stats %+v", st)
	}
}

// Descriptors of another network, stale or not newer are refused with
// their reason.
func TestAddFromRefusals(t *testing.T) {
	dir := newNet(Config{})
	if ok, why := dir.AddFrom(desc(t, 1, "other", t0), "192.0.2.1"); ok || !errors.Is(why, ErrWrongNetwork) {
		t.Errorf("other network: %v %v", ok, why)
	}
	if ok, why := dir.AddFrom(desc(t, 1, "net", t0.Add(-descriptor.MaxAge-time.Minute)), "192.0.2.1"); ok || !errors.Is(why, ErrStale) || !errors.Is(why, descriptor.ErrTooOld) {
		t.Errorf("stale: %v %v", ok, why)
	}
	if st := dir.Stats().Admit; st.Network != 1 || st.Stale != 1 {
		t.Errorf("stats %+v", st)
	}
}

// Descriptors fetched with DIR_GET and read from a directory stream pass
// admission too, with the link's source as introducer.
func TestFetchAndStreamAdmitted(t *testing.T) {
	clk := &fakeClock{now: t0}
	server := New(Config{Network: "net", Now: clk.Now})
	for i := range 10 {
		server.Add(descAt(t, i, t0, fmt.Sprintf("192.0.2.%d:9001", i+1)))
	}
	client := New(Config{Network: "net", Now: clk.Now})
	toServer, _ := connect(client, server)
	if err := client.Fetch(context.Background(), toServer); err != nil {
		t.Fatal(err)
	}
	if client.Len() != DefaultPerSlash24 {
		t.Errorf("fetched %d relays of one /24, want %d", client.Len(), DefaultPerSlash24)
	}
	if info, _ := client.Info(client.List()[0].NodeID()); info.Source != toServer.Source() {
		t.Errorf("source %q", info.Source)
	}
	var s []byte
	for _, d := range server.List() {
		s = append(s, frame(d.Marshal())...)
	}
	other := New(Config{Network: "net", Now: clk.Now})
	if n, err := other.ReadStreamFrom(bytes.NewReader(s), "203.0.113.1"); err != nil || n != DefaultPerSlash24 {
		t.Errorf("ReadStreamFrom = %d, %v", n, err)
	}
}

// A source the node chose (ChooseSource: a client's bootstrap relay and
// guards) may introduce more than PerSource relays, which stay unconfirmed;
// unmarked, it is back at the limit; at most maxChosen are marked.
func TestChosenSource(t *testing.T) {
	dir := newNet(Config{Admission: Admission{PerSource: 3}})
	a := "198.51.100.1"
	dir.ChooseSource(a, true)
	ds := make([]*descriptor.Descriptor, 8)
	for i := range ds {
		ds[i] = descAt(t, i, t0, addrFor(i))
	}
	for i, d := range ds[:6] {
		if ok, why := dir.AddFrom(d, a); !ok {
			t.Fatalf("relay %d from a chosen source: %v", i, why)
		}
		if info, _ := dir.Info(d.NodeID()); info.Confirmed {
			t.Fatalf("relay %d confirmed by one source", i)
		}
	}
	dir.ChooseSource(a, false)
	if ok, why := dir.AddFrom(ds[6], a); ok || !errors.Is(why, ErrSourceLimit) {
		t.Fatalf("after ChooseSource(false): %v, %v", ok, why)
	}
	dir.ChooseSource(a, true)
	for i := range maxChosen + 4 {
		dir.ChooseSource(fmt.Sprintf("192.0.2.%d", i), true)
	}
	dir.mu.Lock()
	n := len(dir.chosen)
	dir.mu.Unlock()
	if n > maxChosen {
		t.Fatalf("%d chosen sources kept, want at most %d", n, maxChosen)
	}
}

// Entries is List with each relay's Info.
func TestEntries(t *testing.T) {
	dir := newNet(Config{})
	for i := range 5 {
		dir.AddFrom(descAt(t, i, t0, addrFor(i)), "198.51.100.1")
	}
	dir.NoteReachable(descAt(t, 2, t0, addrFor(2)).NodeID(), false)
	es := dir.Entries()
	if len(es) != len(dir.List()) || len(es) != 5 {
		t.Fatalf("%d entries, %d listed", len(es), len(dir.List()))
	}
	for _, e := range es {
		info, ok := dir.Info(e.Desc.NodeID())
		if !ok || info != e.Info {
			t.Fatalf("entry info %+v, Info %+v", e.Info, info)
		}
	}
}
