package overlay

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/circuit/exitpolicy"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
	"github.com/darkmatter/darkmatter/overlay/dht"
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
	s := &targetServer{addr: ln.Addr().String(), ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				serveTarget(c)
			}()
		}
	}()
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
