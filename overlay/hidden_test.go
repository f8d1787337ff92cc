package overlay

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/crypto/hs"
	"github.com/darkmatter/darkmatter/crypto/hsblind"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
	"github.com/darkmatter/darkmatter/overlay/dht"
	"github.com/darkmatter/darkmatter/overlay/onion"
	"github.com/darkmatter/darkmatter/overlay/transport"
	"github.com/darkmatter/darkmatter/overlay/transport/memnet"
)

// hiddenNet is a harness with a second client node that publishes hidden
// services.
type hiddenNet struct {
	*harness
	svc *Node
}

func newHiddenNet(t testing.TB, kind string, nRelays int) *hiddenNet {
	t.Helper()
	h := newHarnessWith(t, kind, nRelays, func(c *Config) { c.DHTMinAge = -1 })
	for _, r := range h.relays {
		r.seedDHT()
	}
	cfg := Config{Network: "test-" + kind, Bootstrap: []descriptor.Bootstrap{h.relays[0].Bootstrap()}, AllowSameSubnet: kind == "tcp", Preemptive: -1, DHTMinAge: -1}
	if kind == "mem" {
		cfg.Transports = transport.Registry{memnet.Scheme: h.mem.Host("10.201.0.1")}
	}
	svc, err := New(cfg)
	if err != nil {
		h.close()
		t.Fatal(err)
	}
	if err := svc.Start(ctxT(t)); err != nil {
		svc.Close()
		h.close()
		t.Fatal(err)
	}
	hn := &hiddenNet{harness: h, svc: svc}
	t.Cleanup(func() { svc.Close() })
	return hn
}

// serveListener serves the target protocol on ln until it closes,
// recording each connection's remote and local address.
func serveListener(ln net.Listener) (remotes func() []string, wait func()) {
	var (
		mu   sync.Mutex
		seen []string
		wg   sync.WaitGroup
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			seen = append(seen, c.RemoteAddr().String(), c.LocalAddr().String())
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				serveTarget(c)
			})
		}
	})
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}, wg.Wait
}

// listen publishes a service on the service node's port 80 that serves the
// target protocol until the test ends; it returns the service's address
// and the addresses its accepted connections reported.
func (hn *hiddenNet) listen(t testing.TB) (addr string, remotes func() []string) {
	t.Helper()
	ln, err := hn.svc.Listen(ctxT(t), "tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	remotes, wait := serveListener(ln)
	t.Cleanup(func() { ln.Close(); wait() })
	return ln.Addr().String(), remotes
}

// A service behind Node.Listen is reached by its .dark address through
// Node.Dial: 64 MiB arrive byte-identical over a joined circuit, the
// service's accepted connection names no client, and the client's circuit
// never includes the service node.
func TestHiddenServiceEndToEnd(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			hn := newHiddenNet(t, kind, 6)
			defer hn.close()
			ctx := ctxT(t)
			addr, remotes := hn.listen(t)
			if !strings.HasSuffix(addr, ".dark:80") {
				t.Fatalf("listener address %q", addr)
			}

			c, err := hn.client.Dial(ctx, "tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			const size = 64 << 20
			fmt.Fprintf(c, "D %d\n", size)
			sum := sha256.New()
			if n, err := io.CopyN(sum, c, size); err != nil || n != size {
				t.Fatalf("got %d bytes: %v", n, err)
			}
			if [32]byte(sum.Sum(nil)) != patternSum(size) {
				t.Fatal("SHA-256 mismatch")
			}
			// The client's circuit ends at a rendezvous relay, not at the
			// service node, and holds only relays.
			cc := c.(*circuit.Stream).Circuit()
			for _, hop := range cc.Hops() {
				if hop.Identity == hn.svc.keys.Identity.Public() || hop.Identity == hn.client.keys.Identity.Public() {
					t.Fatal("a client node is a hop of the circuit")
				}
			}
			for _, s := range remotes() {
				for _, leak := range []string{hn.cliHost, "127.0.0.1", "10.200."} {
					if leak != "" && strings.Contains(s, leak) {
						t.Fatalf("the service sees %q", s)
					}
				}
			}
			// A second stream reuses the rendezvous circuit.
			c2, err := hn.client.Dial(ctx, "tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(c2, "E\nping")
			got := make([]byte, 4)
			if _, err := io.ReadFull(c2, got); err != nil || string(got) != "ping" {
				t.Fatalf("echo %q: %v", got, err)
			}
			c2.Close()
			if st := hn.client.onionClient().Stats(); st.Rendezvous != 1 || st.Reused != 1 {
				t.Fatalf("client stats %+v", st)
			}
			if hs := hn.svc.HiddenStats(); len(hs.Services) != 1 || hs.Services[0].Streams != 2 ||
				hs.Services[0].Intros != 3 || hs.Services[0].Rendezvous != 1 {
				t.Fatalf("service stats %+v", hs)
			}
			if hs := hn.client.HiddenStats(); len(hs.Services) != 0 || hs.Client.Fetched != 1 {
				t.Fatalf("client node's hidden stats %+v", hs)
			}
		})
	}
}

// The DHT holds the descriptor under the period's blinded key only: no
// record anywhere names the service key or address, and the blinded keys
// of two periods differ.
func TestHiddenServiceDHTSeesBlindedKeyOnly(t *testing.T) {
	hn := newHiddenNet(t, "mem", 6)
	defer hn.close()
	ctx := ctxT(t)
	key, err := keys.GenerateService(nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := hn.svc.ListenService(ctx, ServiceConfig{Key: key, Ports: []uint16{80}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pub := key.Public()
	found := 0
	for _, r := range hn.relays {
		d := r.getDHT()
		for _, rec := range d.Records() {
			if rec.Type != hs.DescriptorType {
				continue
			}
			found++
			raw := rec.Marshal()
			if bytes.Contains(raw, pub[:]) || bytes.Contains(bytes.ToLower(raw), []byte(pub.Address()[:20])) {
				t.Fatal("a DHT record holds the service key or address")
			}
			if rec.Owner == keys.IdentityPublicKey(pub) {
				t.Fatal("a descriptor is owned by the service key itself")
			}
		}
	}
	if found == 0 {
		t.Fatal("no descriptor stored")
	}
	p := hsblind.PeriodAt(time.Now(), 0)
	b1, _ := hsblind.BlindPublic(pub, hn.svc.cfg.Network, p)
	b2, _ := hsblind.BlindPublic(pub, hn.svc.cfg.Network, p.Next())
	if b1 == b2 || hs.DescriptorKey(b1) == hs.DescriptorKey(b2) {
		t.Fatal("two periods share a blinded key")
	}
	// A descriptor stored under this service's key cannot be replaced by
	// another key's record: the DHT refuses a record whose key its owner
	// does not derive.
	other, _ := keys.GenerateIdentity(nil)
	forged := &dht.Record{Type: hs.DescriptorType, Key: dht.Key(hs.DescriptorKey(b1)), Seq: ^uint64(0) >> 1,
		Expires: time.Now().Add(time.Hour).Unix(), Value: []byte{1}}
	if err := forged.Sign(hn.svc.cfg.Network, other); err != nil {
		t.Fatal(err)
	}
	if _, err := hn.relays[1].DHTPut(ctx, forged); err == nil {
		t.Fatal("a record under another service's blinded key was stored")
	}
	c, err := hn.client.Dial(ctx, "tcp", pub.Address()+":80")
	if err != nil {
		t.Fatalf("dial after the forgery: %v", err)
	}
	c.Close()
}

// Client authorisation: a client without a key gets ErrClientAuthMissing,
// one with an unlisted key ErrClientAuthWrong, a listed one connects.
func TestHiddenServiceClientAuth(t *testing.T) {
	hn := newHiddenNet(t, "mem", 6)
	defer hn.close()
	ctx := ctxT(t)
	allowed, _ := keys.GenerateClientAuth(nil)
	stranger, _ := keys.GenerateClientAuth(nil)
	key, _ := keys.GenerateService(nil)
	s, err := hn.svc.ListenService(ctx, ServiceConfig{Key: key, Ports: []uint16{80}, ClientAuth: []keys.ClientAuthPublicKey{allowed.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	_, wait := serveListener(s)
	defer func() { s.Close(); wait() }()
	addr := key.Public().Address() + ":80"
	if _, err := hn.client.Dial(ctx, "tcp", addr); !errors.Is(err, onion.ErrClientAuthMissing) {
		t.Fatalf("no key: %v", err)
	}
	for _, tc := range []struct {
		k    *keys.ClientAuthPrivateKey
		want error
	}{{stranger, onion.ErrClientAuthWrong}, {allowed, nil}} {
		cfg := hn.client.cfg
		cfg.ClientAuthKeys = []*keys.ClientAuthPrivateKey{tc.k}
		cfg.Keys = nil
		n, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Start(ctx); err != nil {
			n.Close()
			t.Fatal(err)
		}
		c, err := n.Dial(ctx, "tcp", addr)
		if !errors.Is(err, tc.want) {
			n.Close()
			t.Fatalf("key: %v, want %v", err, tc.want)
		}
		if c != nil {
			io.WriteString(c, "E\nok")
			got := make([]byte, 2)
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatal(err)
			}
			c.Close()
		}
		n.Close()
	}
}

// Dials racing to a service no circuit reaches yet each make a rendezvous;
// one circuit is kept for later streams, and the others close with their
// only stream rather than hold a rendezvous at the service.
func TestHiddenServiceConcurrentDials(t *testing.T) {
	hn := newHiddenNet(t, "mem", 6)
	defer hn.close()
	ctx := ctxT(t)
	addr, _ := hn.listen(t)
	joints := func() int {
		n := 0
		for _, r := range hn.relays {
			n += r.sw.Stats().Joints
		}
		return n
	}
	const dials = 4
	conns := make([]net.Conn, dials)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			c, err := hn.client.Dial(ctx, "tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			conns[i] = c
			io.WriteString(c, "E\nx")
			if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	made := hn.client.onionClient().Stats().Rendezvous
	if made < 2 {
		t.Skipf("the dials did not race (%d rendezvous)", made)
	}
	for _, c := range conns {
		c.Close()
	}
	waitFor(t, func() bool { return joints() == 1 }, "the extra rendezvous circuits to close")
	c, err := hn.client.Dial(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if st := hn.client.onionClient().Stats(); st.Rendezvous != made || st.Reused != 1 {
		t.Fatalf("client %+v after %d rendezvous: the kept circuit was not reused", st, made)
	}
}

// A node keeps only the services that are still open.
func TestHiddenServiceClosedForgotten(t *testing.T) {
	hn := newHiddenNet(t, "mem", 4)
	defer hn.close()
	for range 3 {
		ln, err := hn.svc.Listen(ctxT(t), "tcp", ":80")
		if err != nil {
			t.Fatal(err)
		}
		ln.Close()
	}
	ln, err := hn.svc.Listen(ctxT(t), "tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	hn.svc.hidden.mu.Lock()
	n := len(hn.svc.hidden.services)
	hn.svc.hidden.mu.Unlock()
	if n != 1 {
		t.Fatalf("the node holds %d services, 1 open", n)
	}
}
