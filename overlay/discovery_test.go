package overlay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/circuit/exitpolicy"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
	"github.com/darkmatter/darkmatter/overlay/dht"
	"github.com/darkmatter/darkmatter/overlay/link"
	"github.com/darkmatter/darkmatter/overlay/transport"
	"github.com/darkmatter/darkmatter/overlay/transport/memnet"
)

// Node-level tests of discovery (issue 12): whole Nodes in one process
// over memnet, with public-looking addresses in distinct /16s so that the
// default admission and extend rules apply.

// discNet is a memnet network of relays, each bootstrapped from relay 0
// only, and the echo target behind them.
type discNet struct {
	t      *testing.T
	mem    *memnet.Network
	relays []*Node // in start order; Close keeps the slot
	target *targetServer
	next   int // index of the next relay's address
	tune   func(c *Config)
}

// discTargetIP is where the echo target listens.
const discTargetIP = "12.34.0.1"

// discRelayIP returns relay i's address, in a /16 of its own.
func discRelayIP(i int) string { return fmt.Sprintf("%d.%d.0.1", 20+i/250, 1+i%250) }

func newDiscNet(t *testing.T, tune func(c *Config)) *discNet {
	dn := &discNet{t: t, mem: &memnet.Network{}, tune: tune}
	ln, err := dn.mem.Host(discTargetIP).Listen(":80")
	if err != nil {
		t.Fatal(err)
	}
	s := newTargetServer(ln)
	dn.target = s
	t.Cleanup(dn.close)
	return dn
}

// config returns relay i's configuration: an exit (towards the target
// only) bootstrapped from relay 0.
func (dn *discNet) config(i int) Config {
	ip := discRelayIP(i)
	host := dn.mem.Host(ip)
	exit := &circuit.ExitConfig{Policy: exitpolicy.AcceptAll(), ConnectTimeout: 5 * time.Second,
		Dial: func(ctx context.Context, _, addr string) (net.Conn, error) { return host.Dial(ctx, addr) }}
	cfg := Config{
		Network:    "test-disc",
		Transports: transport.Registry{memnet.Scheme: host},
		Listen:     []string{memnet.Scheme + "://" + ip + ":7000"},
		Exit:       exit,
	}
	if len(dn.relays) > 0 {
		cfg.Bootstrap = []descriptor.Bootstrap{dn.relays[0].Bootstrap()}
	}
	if dn.tune != nil {
		dn.tune(&cfg)
	}
	return cfg
}

// start starts the next relay.
func (dn *discNet) start() *Node {
	dn.t.Helper()
	cfg := dn.config(dn.next)
	dn.next++
	n, err := New(cfg)
	if err != nil {
		dn.t.Fatal(err)
	}
	dn.relays = append(dn.relays, n)
	if err := n.Start(ctxT(dn.t)); err != nil {
		dn.t.Fatalf("relay %d: %v", len(dn.relays)-1, err)
	}
	return n
}

// live returns the relays not closed.
func (dn *discNet) live() []*Node {
	var out []*Node
	for _, r := range dn.relays {
		if !r.isClosed() {
			out = append(out, r)
		}
	}
	return out
}

// client starts a client bootstrapped from relay 0.
func (dn *discNet) client(ip string, tune func(c *Config)) *Node {
	dn.t.Helper()
	cfg := Config{Network: "test-disc", Transports: transport.Registry{memnet.Scheme: dn.mem.Host(ip)},
		Bootstrap: []descriptor.Bootstrap{dn.relays[0].Bootstrap()}, Preemptive: -1}
	if tune != nil {
		tune(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		dn.t.Fatal(err)
	}
	dn.t.Cleanup(func() { c.Close() })
	if err := c.Start(ctxT(dn.t)); err != nil {
		dn.t.Fatalf("client: %v", err)
	}
	return c
}

func (dn *discNet) close() {
	for _, r := range dn.relays {
		r.Close()
	}
	dn.target.close()
}

// knowsAll reports whether every node of ns lists every relay of want.
func knowsAll(ns, want []*Node) bool {
	for _, n := range ns {
		for _, w := range want {
			if n.dir.Get(w.NodeID()) == nil {
				return false
			}
		}
	}
	return true
}

// missing counts the (node, relay) pairs where node does not list relay.
func missing(ns, want []*Node) int {
	k := 0
	for _, n := range ns {
		for _, w := range want {
			if n.dir.Get(w.NodeID()) == nil {
				k++
			}
		}
	}
	return k
}

// waitUntil polls f every 20 ms until it holds or limit passes.
func waitUntil(t *testing.T, limit time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for: %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// echo opens a stream from c to the target and checks an echo.
func (dn *discNet) echo(c *Node, isolation string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := c.DialStream(ctx, dn.target.addr, isolation)
	if err != nil {
		return err
	}
	defer st.Close()
	st.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := st.Write([]byte("E\nping")); err != nil {
		return err
	}
	buf := make([]byte, 4)
	if _, err := readFull(st, buf); err != nil {
		return err
	}
	if string(buf) != "ping" {
		return fmt.Errorf("echo %q", buf)
	}
	return nil
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := c.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// 200 relays, each started with only relay 0's address, all learn every
// relay by gossip (the default admission rules, one /16 each); a client
// bootstrapped from relay 0 then learns them all at Start, and its
// directory sources (primary guards) answered.
func TestBootstrap200(t *testing.T) {
	size, limit := 200, 60*time.Second
	if raceEnabled {
		size = 60 // 200 nodes under -race take minutes on 2 cores
	}
	if testing.Short() {
		size = 40
	}
	dn := newDiscNet(t, func(c *Config) {
		c.Gossip = time.Second
		c.Announce = 4 // gossip, not announcement, must spread them
	})
	start := time.Now()
	for range size {
		dn.start()
	}
	t.Logf("%d relays started in %v", size, time.Since(start).Round(time.Millisecond))
	waitUntil(t, limit, "every relay lists every relay", func() bool {
		return knowsAll(dn.relays, dn.relays)
	})
	t.Logf("converged %v after the start", time.Since(start).Round(time.Millisecond))
	for i, r := range dn.relays {
		if got := len(r.Relays()); got != size {
			t.Errorf("relay %d lists %d relays, want %d", i, got, size)
		}
		if st := r.Stats().Dir.Admit; st.Subnet != 0 || st.Source != 0 || st.Full != 0 {
			t.Errorf("relay %d refused honest relays: %+v", i, st)
		}
	}
	c := dn.client("13.0.0.1", nil)
	if got := len(c.Relays()); got != size {
		t.Errorf("the client lists %d relays after Start, want %d", got, size)
	}
	if c.dirSourceCount() == 0 || len(c.mgr.PrimaryGuards()) == 0 {
		t.Errorf("the client's directory sources: %d answered of %d primary guards", c.dirSourceCount(), len(c.mgr.PrimaryGuards()))
	}
	if err := dn.echo(c, "a"); err != nil {
		t.Fatalf("client stream: %v", err)
	}
}

// The DHT over real Nodes under churn: records Put from several relays of
// 60 stay found after 30% of the relays leave and as many new ones join
// (they learn the DHT nodes from the directory they gossip, seedDHT):
// lookups from every live relay and from a client, through its circuit,
// succeed at least 99% of the time.
func TestDHTChurnOverNodes(t *testing.T) {
	size := 60
	if raceEnabled {
		size = 30
	}
	dn := newDiscNet(t, func(c *Config) {
		c.Gossip = time.Second
		c.DHTMinAge = -1
	})
	begin := time.Now()
	for range size {
		dn.start()
	}
	waitUntil(t, 60*time.Second, "every relay lists every relay", func() bool { return knowsAll(dn.relays, dn.relays) })
	ctx := ctxT(t)
	var recs []*dht.Record
	for p := 1; p <= 5; p++ { // five owners, each storing from its own relay
		owner, err := keys.GenerateIdentity(nil)
		if err != nil {
			t.Fatal(err)
		}
		for j := range 4 {
			r, err := dht.NewSigned("test-disc", owner, fmt.Sprintf("rec-%d-%d", p, j), []byte{byte(p), byte(j)}, 1, time.Now().Add(2*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			stored, err := dn.relays[p].DHTPut(ctx, r)
			if err != nil || stored < 5 {
				t.Fatalf("relay %d Put: %d stored, %v", p, stored, err)
			}
			recs = append(recs, r)
		}
	}
	// Churn: 30% leave (one of the storing relays among them), as many
	// join.
	leave := 0
	for i, r := range dn.relays {
		if i%10 == 3 || i%10 == 6 || i%10 == 9 {
			r.Close()
			leave++
		}
	}
	for range leave {
		dn.start()
	}
	live := dn.live()
	waitUntil(t, 60*time.Second, "every live relay lists every live relay", func() bool { return knowsAll(live, live) })
	churned := time.Since(begin)
	c := dn.client("13.0.0.1", nil)

	type result struct{ ok, total int }
	results := make(chan result, len(live))
	for i, r := range live {
		go func() {
			var res result
			for j, rec := range recs {
				if j%4 != i%4 { // each record from a quarter of the relays
					continue
				}
				res.total++
				if got, err := r.DHTGet(ctx, dht.TypeSigned, rec.Key); err == nil && len(got) == 1 && got[0].Owner == rec.Owner {
					res.ok++
				}
			}
			results <- res
		}()
	}
	ok, total := 0, 0
	for range live {
		res := <-results
		ok, total = ok+res.ok, total+res.total
	}
	cok := 0
	for _, rec := range recs {
		if got, err := c.DHTGet(ctx, dht.TypeSigned, rec.Key); err == nil && len(got) == 1 && got[0].Owner == rec.Owner {
			cok++
		}
	}
	t.Logf("churned at %v, looked up at %v", churned.Round(time.Millisecond), time.Since(begin).Round(time.Millisecond))
	t.Logf("after churn: relays found %d of %d records, the client %d of %d", ok, total, cok, len(recs))
	if ok*100 < total*99 {
		t.Errorf("relays found %d of %d records, want at least 99%%", ok, total)
	}
	if cok*100 < len(recs)*99 {
		t.Errorf("the client found %d of %d records, want at least 99%%", cok, len(recs))
	}
	checkClientLinks(t, c, nil)
}

// storeRaw sends a STORE of r from relay from to relay to over their link
// (linkrpc DHT cells), as a hostile relay would, and returns the status of
// the STORED answer.
func storeRaw(t *testing.T, from, to *Node, r *dht.Record) dht.Reason {
	t.Helper()
	req, err := (&dht.Message{Kind: dht.KindStore, ID: 7, Records: []*dht.Record{r}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := from.callDHT(ctxT(t), to.NodeID(), req)
	if err != nil {
		t.Fatalf("STORE call: %v", err)
	}
	m, err := dht.ParseMessage(resp)
	if err != nil || m.Kind != dht.KindStored {
		t.Fatalf("STORE answer: %v %v", m, err)
	}
	return m.Status
}

// Records with a bad signature, of another network, of an unregistered
// type or past their expiry, sent to a relay as raw STOREs over a real
// link, are refused with their reason, never stored, and never returned
// by DHTGet, on that relay, another relay or a client; a valid record
// sent the same way is stored and found (the test can fail).
func TestForgedRecordsNeverReturned(t *testing.T) {
	dn := newDiscNet(t, func(c *Config) { c.DHTMinAge = -1; c.Gossip = 500 * time.Millisecond })
	for range 6 {
		dn.start()
	}
	waitUntil(t, 30*time.Second, "every relay lists every relay", func() bool { return knowsAll(dn.relays, dn.relays) })
	attacker, victim := dn.relays[1], dn.relays[2]
	c := dn.client("13.0.0.1", nil)
	owner, err := keys.GenerateIdentity(nil)
	if err != nil {
		t.Fatal(err)
	}
	signed := func(network, name string, expires time.Time) *dht.Record {
		r, err := dht.NewSigned(network, owner, name, []byte("v"), 1, expires)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	badSig := signed("test-disc", "bad-sig", time.Now().Add(time.Hour))
	badSig.Signature[0] ^= 1
	otherNet := signed("another-network", "other-net", time.Now().Add(time.Hour))
	unknownType := signed("test-disc", "unknown-type", time.Now().Add(time.Hour))
	unknownType.Type = 999
	if err := unknownType.Sign("test-disc", owner); err != nil {
		t.Fatal(err)
	}
	expired := signed("test-disc", "expired", time.Now().Add(time.Hour))
	expired.Expires = time.Now().Add(-time.Minute).Unix()
	if err := expired.Sign("test-disc", owner); err != nil {
		t.Fatal(err)
	}
	before := victim.DHTStats().RecordsStored
	for _, tc := range []struct {
		name string
		r    *dht.Record
		want dht.Reason
	}{
		{"bad signature", badSig, dht.ReasonBadSig},
		{"another network", otherNet, dht.ReasonBadSig},
		{"unregistered type", unknownType, dht.ReasonUnknownType},
		{"past expiry", expired, dht.ReasonExpired},
	} {
		if got := storeRaw(t, attacker, victim, tc.r); got != tc.want {
			t.Errorf("%s: STORED %v, want %v", tc.name, got, tc.want)
		}
		for who, n := range map[string]*Node{"the victim": victim, "another relay": dn.relays[4], "the client": c} {
			if got, err := n.DHTGet(ctxT(t), tc.r.Type, tc.r.Key); err == nil || len(got) > 0 {
				t.Errorf("%s: %s got %d records (%v)", tc.name, who, len(got), err)
			}
		}
	}
	if got := victim.DHTStats().RecordsStored; got != before {
		t.Errorf("the victim holds %d records, %d before the forged STOREs", got, before)
	}
	good := signed("test-disc", "good", time.Now().Add(time.Hour))
	if got := storeRaw(t, attacker, victim, good); got != dht.Stored {
		t.Fatalf("a valid record: STORED %v", got)
	}
	if got, err := c.DHTGet(ctxT(t), dht.TypeSigned, good.Key); err != nil || len(got) != 1 {
		t.Fatalf("the client's Get of the valid record: %d, %v", len(got), err)
	}
}

// A client whose StateDir holds the relay list and guards restarts with
// its bootstrap relay gone: Start returns without it, a stream works at
// once, and the guard sample survived (the same first guard).
func TestRestartFromStateDir(t *testing.T) {
	dn := newDiscNet(t, func(c *Config) { c.Gossip = 500 * time.Millisecond })
	for range 8 {
		dn.start()
	}
	waitUntil(t, 30*time.Second, "every relay lists every relay", func() bool { return knowsAll(dn.relays, dn.relays) })
	state := t.TempDir()
	tune := func(c *Config) { c.StateDir = state }
	c := dn.client("13.0.0.1", tune)
	if err := dn.echo(c, "first"); err != nil {
		t.Fatal(err)
	}
	guards := c.mgr.Guards()
	if len(guards) == 0 {
		t.Fatal("no guards")
	}
	first := guards[0]
	c.Close()
	dn.relays[0].Close() // the bootstrap relay
	c2 := dn.client("13.0.0.2", tune)
	if got := len(c2.Relays()); got < len(dn.relays)-1 {
		t.Errorf("the restarted client lists %d relays, want at least %d", got, len(dn.relays)-1)
	}
	g2 := c2.mgr.Guards()
	if len(g2) == 0 || g2[0].Identity != first.Identity {
		t.Errorf("the guard sample did not survive the restart")
	}
	if err := dn.echo(c2, "second"); err != nil {
		t.Fatalf("stream after the restart: %v", err)
	}
}

// A node of another network cannot join: its Start fails with
// link.ErrNetworkMismatch, and the relay it tried counts the failed
// handshake and logs why (a network mismatch), adding nothing to its
// directory.
func TestNetworkMismatchRelaySide(t *testing.T) {
	var mu sync.Mutex
	var logs []string
	dn := newDiscNet(t, func(c *Config) {
		c.Logf = func(format string, args ...any) {
			mu.Lock()
			logs = append(logs, fmt.Sprintf(format, args...))
			mu.Unlock()
		}
	})
	r := dn.start()
	before := r.Stats()
	for _, relay := range []bool{false, true} {
		cfg := Config{Network: "another", Transports: transport.Registry{memnet.Scheme: dn.mem.Host("13.0.0.9")},
			Bootstrap: []descriptor.Bootstrap{r.Bootstrap()}}
		if relay {
			cfg.Listen = []string{memnet.Scheme + "://13.0.0.9:7000"}
		}
		n, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		err = n.Start(ctxT(t))
		n.Close()
		if !errors.Is(err, link.ErrNetworkMismatch) || !strings.Contains(err.Error(), "network") {
			t.Fatalf("relay %v of another network: Start: %v, want a network mismatch", relay, err)
		}
	}
	waitUntil(t, 10*time.Second, "the relay to count the failed handshakes", func() bool {
		return r.Stats().Links.FailedHandshakes >= before.Links.FailedHandshakes+2
	})
	mu.Lock()
	said := 0
	for _, l := range logs {
		if strings.Contains(l, "different network") {
			said++
		}
	}
	mu.Unlock()
	if said < 2 {
		t.Errorf("the relay logged %d network mismatches, want 2", said)
	}
	if got := len(r.Relays()); got != 1 {
		t.Errorf("the relay lists %d relays, want only itself", got)
	}
}
