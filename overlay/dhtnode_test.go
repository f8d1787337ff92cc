package overlay

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/dht"
)

// A record a relay stores in the DHT over links is found by the client,
// whose lookup goes through a circuit: the DHT nodes asked see only the
// circuit's last hop, never the client. A record stored by the client
// (through its circuit) is found by a relay.
func TestDHTOverNodes(t *testing.T) {
	for _, kind := range []string{"mem", "tcp"} {
		t.Run(kind, func(t *testing.T) {
			h := newHarnessWith(t, kind, 5, func(c *Config) { c.DHTMinAge = -1 })
			defer h.close()
			for _, r := range h.relays {
				r.seedDHT()
			}
			ctx := ctxT(t)
			owner, err := keys.GenerateIdentity(nil)
			if err != nil {
				t.Fatal(err)
			}
			rec, err := dht.NewSigned(h.relays[1].cfg.Network, owner, "hello", []byte("world"), 1, time.Now().Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			stored, err := h.relays[1].DHTPut(ctx, rec)
			if err != nil || stored == 0 {
				t.Fatalf("relay Put: %d stored, %v", stored, err)
			}
			got, err := h.client.DHTGet(ctx, dht.TypeSigned, rec.Key)
			if err != nil || len(got) != 1 {
				t.Fatalf("client Get: %d records, %v", len(got), err)
			}
			if _, data, _ := dht.SplitSigned(got[0]); string(data) != "world" {
				t.Fatalf("client got %q", data)
			}
			// The client made no link to any relay but its primary
			// guards: its calls went through the circuit.
			checkClientLinks(t, h.client, nil)
			rec2, _ := dht.NewSigned(h.relays[1].cfg.Network, owner, "from-client", []byte("x"), 1, time.Now().Add(time.Hour))
			if stored, err := h.client.DHTPut(ctx, rec2); err != nil || stored == 0 {
				t.Fatalf("client Put: %d stored, %v", stored, err)
			}
			if got, err := h.relays[3].DHTGet(ctx, dht.TypeSigned, rec2.Key); err != nil || len(got) != 1 {
				t.Fatalf("relay Get of the client's record: %d, %v", len(got), err)
			}
			var missing dht.Key
			missing[0] = 1
			if _, err := h.client.DHTGet(ctx, dht.TypeSigned, missing); !errors.Is(err, dht.ErrNotFound) {
				t.Fatalf("missing key: %v", err)
			}
			if st := h.relays[1].DHTStats(); st == (dht.Stats{}) {
				t.Fatal("no DHT stats")
			}
		})
	}
}

// A DHT stream frame with a length over the limit closes the stream; the
// hop goes on serving others.
func TestDHTStreamFrames(t *testing.T) {
	var to keys.NodeID
	to[0] = 7
	var b bytes.Buffer
	if err := writeDHTCall(&b, to, []byte("req")); err != nil {
		t.Fatal(err)
	}
	gotTo, req, err := readDHTCall(&b)
	if err != nil || gotTo != to || string(req) != "req" {
		t.Fatalf("%x %q %v", gotTo[:1], req, err)
	}
	b.Reset()
	writeDHTAnswer(&b, dhtWillNotCall, []byte("ignored"))
	if _, err := readDHTAnswer(&b); !errors.Is(err, errWillNotCall) {
		t.Fatalf("status 2: %v", err)
	}
	b.Reset()
	b.Write([]byte{0, 0, 1, 0, 1}) // 65,537 bytes
	if _, err := readDHTAnswer(&b); !errors.Is(err, errDHTFrame) {
		t.Fatalf("long answer: %v", err)
	}
	_ = context.Background
}

// A client keeps DefaultPreemptive clean circuits ready before its first
// stream, and the first stream takes one instead of building.
func TestPreemptiveCircuits(t *testing.T) {
	h := newHarnessWith(t, "mem", 4, func(c *Config) {
		if len(c.Listen) == 0 {
			c.Preemptive = 0 // the default
		}
	})
	defer h.close()
	waitFor(t, func() bool { return h.client.mgr.Preemptive() == DefaultPreemptive }, "the client's clean circuits")
	ready := h.client.mgr.Open() // the clean circuits: nothing else is open yet
	st, err := h.client.DialStream(ctxT(t), h.target.addr, "")
	if err != nil {
		t.Fatal(err)
	}
	// The stream went on a circuit built before it was asked for (the
	// pool is refilled at once, so counting builds would race).
	if cc := st.(*circuit.Stream).Circuit(); !slices.Contains(ready, cc) {
		t.Fatalf("the first stream went on a new circuit; %d clean ones were ready", len(ready))
	}
	st.Close()
	waitFor(t, func() bool { return h.client.mgr.Preemptive() == DefaultPreemptive }, "the pool refilled")
}

// A download through a circuit measures its relays: each gets at least the
// throughput the stream carried, which caps what they advertise in path
// selection (spec/circuits.md §1.1).
func TestStreamMeasuresRelays(t *testing.T) {
	h := newHarness(t, "mem", 4)
	defer h.close()
	st, err := h.client.DialStream(ctxT(t), h.target.addr, "")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(st, "D 16777216\n")
	if _, err := io.CopyN(io.Discard, st, 16<<20); err != nil {
		t.Fatal(err)
	}
	hops := st.(*circuit.Stream).Circuit().Hops()
	for _, hop := range hops {
		if m := h.client.mgr.Measured(hop.Identity); m != 0 {
			t.Fatalf("measured %d before the stream closed", m)
		}
	}
	st.Close()
	for i, hop := range hops {
		if m := h.client.mgr.Measured(hop.Identity); m < 1<<20 {
			t.Errorf("hop %d measured at %d B/s after 16 MiB", i+1, m)
		}
	}
}
