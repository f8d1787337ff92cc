package dir

import (
	"context"
	"testing"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// BenchmarkSync5000 is one anti-entropy round between two directories of
// 5,000 relays that differ in 1% (50 relays the client lacks): time, and
// bytes on the link per round (GOSSIP cells, both directions).
func BenchmarkSync5000(b *testing.B) {
	const n, diff = 5000, 50
	clk := &fakeClock{now: t0}
	server := gossipDir(clk, Config{Gossip: GossipConfig{Burst: 1 << 30}})
	client := gossipDir(clk, Config{Gossip: GossipConfig{Burst: 1 << 30}})
	defer server.Close()
	defer client.Close()
	var missing []keys.NodeID
	for i := range n {
		d := descFor(i)
		server.Add(d)
		if i%(n/diff) == 0 {
			missing = append(missing, d.NodeID())
			continue
		}
		client.Add(d)
	}
	toServer, _ := connect(client, server)
	var res SyncResult
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		client.mu.Lock()
		for _, id := range missing {
			if e := client.relays[id]; e != nil {
				client.removeLocked(id, e)
			}
		}
		client.mu.Unlock()
		var err error
		res, err = client.Sync(context.Background(), toServer)
		if err != nil || res.Learned != diff {
			b.Fatalf("%+v, %v", res, err)
		}
	}
	b.ReportMetric(float64(res.BytesSent+res.BytesRecv), "link-B/sync")
	b.ReportMetric(float64(res.BytesRecv-diff*4085), "overhead-B/sync")
}

// BenchmarkSyncFull5000 is the first round of an empty directory with one
// of 5,000 relays (the source limit raised so one peer may introduce
// them all): time, and bytes on the link.
func BenchmarkSyncFull5000(b *testing.B) {
	const n = 5000
	clk := &fakeClock{now: t0}
	server := gossipDir(clk, Config{Gossip: GossipConfig{Burst: 1 << 30}})
	defer server.Close()
	for i := range n {
		server.Add(descFor(i))
	}
	var res SyncResult
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		client := gossipDir(clk, Config{Admission: Admission{PerSource: n}})
		toServer, _ := connect(client, server)
		var err error
		res, err = client.Sync(context.Background(), toServer)
		client.Close()
		if err != nil || res.Learned != n {
			b.Fatalf("%+v, %v", res, err)
		}
	}
	b.ReportMetric(float64(res.BytesSent+res.BytesRecv), "link-B/sync")
	b.ReportMetric(float64(res.BytesRecv-n*4085), "overhead-B/sync")
}
