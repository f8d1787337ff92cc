package dht

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// badRecords returns records that must be refused, with their reason.
func badRecords(t *testing.T, n *testNet) []struct {
	name   string
	r      *Record
	reason Reason
} {
	now := n.clock.Now()
	k := testOwner(7)
	mk := func(network, name string, data []byte, exp time.Time) *Record {
		r, err := NewSigned(network, k, name, data, 1, exp)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	badSig := mk(testNetwork, "badsig", nil, now.Add(time.Hour))
	badSig.Signature[3] ^= 1
	unknown := &Record{Type: 999, Key: SignedKey(k.Public(), "u"), Seq: 1, Expires: now.Add(time.Hour).Unix(), Value: []byte("\x01u")}
	if err := unknown.Sign(testNetwork, k); err != nil {
		t.Fatal(err)
	}
	wrongKey := &Record{Type: TypeSigned, Key: SignedKey(testOwner(8).Public(), "victim"), Seq: 1,
		Expires: now.Add(time.Hour).Unix(), Value: []byte("\x06victim")}
	if err := wrongKey.Sign(testNetwork, k); err != nil {
		t.Fatal(err)
	}
	return []struct {
		name   string
		r      *Record
		reason Reason
	}{
		{"bad signature", badSig, ReasonBadSig},
		{"wrong network", mk("other-net", "net", nil, now.Add(time.Hour)), ReasonBadSig},
		{"unknown type", unknown, ReasonUnknownType},
		{"past expiry", mk(testNetwork, "old", nil, now.Add(-time.Second)), ReasonExpired},
		{"expiry too far", mk(testNetwork, "far", nil, now.Add(SignedSpec.MaxTTL+ClockSkew+time.Minute)), ReasonTooLong},
		{"oversize", mk(testNetwork, "big", bytes.Repeat([]byte{1}, SignedSpec.MaxValue), now.Add(time.Hour)), ReasonTooLarge},
		{"key of another owner", wrongKey, ReasonBadKey},
	}
}

// Bad records are refused on STORE with the right reason, never returned
// by Get, and a malicious node serving them in VALUE answers is ignored.
func TestBadRecordsRefused(t *testing.T) {
	n := newTestNet(t, 20)
	n.grow(40)
	nodes := n.liveNodes()
	target := nodes[3]
	for _, tc := range badRecords(t, n) {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := nodes[0].Put(context.Background(), tc.r); err == nil {
				t.Fatal("Put accepted a bad record")
			}
			before := target.Stats().Refused[tc.reason]
			st := storeVia(t, nodes[1], target.Self(), tc.r)
			if st != tc.reason {
				t.Fatalf("STORE status %v, want %v", st, tc.reason)
			}
			if target.Stats().Refused[tc.reason] != before+1 {
				t.Fatal("refusal not counted")
			}
			// A hostile node serves the bad record to every Get.
			bad := Contact{ID: keys.NodeID(tc.r.Key), Addr: "tcp://198.18.0.1:9001"}
			bad.ID[31] ^= 1
			n.net.Attach(bad, &eclipser{self: bad, forge: []*Record{tc.r}})
			defer n.net.Detach(bad.ID)
			for _, d := range nodes {
				d.AddContact(bad)
			}
			if rs, err := nodes[5].Get(context.Background(), tc.r.Type, tc.r.Key); err == nil {
				t.Fatalf("Get returned %d bad records", len(rs))
			}
		})
	}
	if target.Stats().RecordsStored != 0 {
		t.Fatal("a bad record was stored")
	}
}

// A VALUE answer carrying a valid record under another key is ignored.
func TestValueForOtherKeyIgnored(t *testing.T) {
	n := newTestNet(t, 21)
	n.grow(20)
	nodes := n.liveNodes()
	good := n.signed(1, "good")
	var other Key
	other[0] = 0xee
	bad := Contact{ID: keys.NodeID(other), Addr: "tcp://198.18.0.1:9001"}
	n.net.Attach(bad, &eclipser{self: bad, forge: []*Record{good}})
	for _, d := range nodes {
		d.AddContact(bad)
	}
	if _, err := nodes[2].Get(context.Background(), TypeSigned, other); err == nil {
		t.Fatal("Get returned a record stored under another key")
	}
	if nodes[2].Stats().Refused[ReasonBadKey] == 0 {
		t.Fatal("mismatched record not counted")
	}
}

// storeVia sends one STORE from d to c and returns the status.
func storeVia(t *testing.T, d *DHT, c Contact, r *Record) Reason {
	t.Helper()
	a, err := d.call(context.Background(), d.cfg.Transport, c, &Message{Kind: KindStore, Records: []*Record{r}}, KindStored)
	if err != nil {
		t.Fatalf("STORE: %v", err)
	}
	return a.Status
}

// A newer Seq replaces an older one; an older or equal one is refused.
func TestSeqReplaces(t *testing.T) {
	n := newTestNet(t, 22)
	n.grow(2)
	a, b := n.liveNodes()[0], n.liveNodes()[1]
	k := testOwner(3)
	mk := func(seq uint64, data string) *Record {
		r, err := NewSigned(testNetwork, k, "seq", []byte(data), seq, n.clock.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if st := storeVia(t, a, b.Self(), mk(2, "two")); st != Stored {
		t.Fatal(st)
	}
	if st := storeVia(t, a, b.Self(), mk(1, "one")); st != ReasonStale {
		t.Fatalf("older seq: %v", st)
	}
	if st := storeVia(t, a, b.Self(), mk(2, "other two")); st != ReasonStale {
		t.Fatalf("same seq, other value: %v", st)
	}
	if st := storeVia(t, a, b.Self(), mk(3, "three")); st != Stored {
		t.Fatal(st)
	}
	rs := b.store.get(TypeSigned, SignedKey(k.Public(), "seq"), n.clock.Now())
	if len(rs) != 1 || rs[0].Seq != 3 {
		t.Fatalf("store holds %v", rs)
	}
}
