package circuit

import (
	"context"
	"crypto/ed25519"
	"testing"
	"time"
)

// BenchmarkIntroduce measures one introduction through an intro point:
// INTRODUCE1 from a client's circuit, INTRODUCE2 at the service, and the
// INTRODUCE_ACK back (the client's circuit is reused by resetting its
// one-INTRODUCE1 state at both ends, so no circuit is built per op).
func BenchmarkIntroduce(b *testing.B) {
	n := newFakeNet()
	defer n.close()
	clock := newTestClock()
	svc := n.addNode(b, "service:1", nil)
	cli := n.addNode(b, "client:1", nil)
	ip := n.addNodeWith(b, "intro:1", nil, func(c *Config) {
		c.Intro = &IntroConfig{Now: clock.now, MaxRate: 1 << 20, MaxBurst: 1 << 20, TotalRate: 1 << 30, TotalBurst: 1 << 30}
	})
	ip.protocols = introProtocols
	ctx := context.Background()
	sc, err := svc.sw.BuildCircuit(ctx, path([]*fakeNode{ip}))
	if err != nil {
		b.Fatal(err)
	}
	defer sc.Close()
	auth := newAuthKey(b)
	got := make(chan struct{}, 1)
	if err := sc.EstablishIntro(ctx, auth, "test", ip.keys.NodeID(), 65535, 65535, func([]byte) { got <- struct{}{} }); err != nil {
		b.Fatal(err)
	}
	cc, err := cli.sw.BuildCircuit(ctx, path([]*fakeNode{ip}))
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	var at *relayCirc // cc's end at the intro point
	for _, rc := range ip.sw.relayCircuits() {
		rc.mu.Lock()
		if rc.intro == nil {
			at = rc
		}
		rc.mu.Unlock()
	}
	var key [32]byte
	copy(key[:], auth.Public().(ed25519.PublicKey))
	enc := make([]byte, 1200) // about an introduction's size
	b.ReportAllocs()
	for b.Loop() {
		clock.advance(time.Millisecond)
		at.mu.Lock()
		at.introduced = false
		at.mu.Unlock()
		cc.mu.Lock()
		cc.intro = introState{}
		cc.mu.Unlock()
		st, err := cc.Introduce(ctx, key, enc)
		if err != nil || st != IntroStatusPassed {
			b.Fatalf("status %d, %v", st, err)
		}
		<-got
	}
}
