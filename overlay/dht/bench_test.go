package dht

import (
	"context"
	"testing"
)

// BenchmarkLookup1000 runs FindNode lookups in a 1,000-node in-memory
// network and reports hops and messages per lookup.
func BenchmarkLookup1000(b *testing.B) {
	n := newTestNet(b, 50)
	n.grow(1000)
	nodes := n.liveNodes()
	var msgs, hops uint64
	i := 0
	for b.Loop() {
		d := nodes[i%len(nodes)]
		i++
		before := d.Stats()
		if _, err := d.FindNode(context.Background(), Key(n.randomID())); err != nil {
			b.Fatal(err)
		}
		after := d.Stats()
		msgs += after.MessagesSent - before.MessagesSent
		hops += after.Hops - before.Hops
	}
	b.ReportMetric(float64(hops)/float64(b.N), "hops/op")
	b.ReportMetric(float64(msgs)/float64(b.N), "msgs/op")
}

// BenchmarkVerify measures a full record verification (no cache).
func BenchmarkVerify(b *testing.B) {
	r := seedRecord()
	g := DefaultRegistry()
	b.ReportAllocs()
	for b.Loop() {
		if err := g.Verify(r, testNetwork, epoch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseMessage measures decoding a VALUE with one record.
func BenchmarkParseMessage(b *testing.B) {
	m, _ := seedMessages()[5].Marshal()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseMessage(m); err != nil {
			b.Fatal(err)
		}
	}
}
