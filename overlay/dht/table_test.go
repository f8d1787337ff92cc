package dht

import (
	"fmt"
	"testing"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// idInBucket returns an ID sharing exactly prefix bits with self, varied by i.
func idInBucket(self keys.NodeID, prefix int, i int) keys.NodeID {
	id := self
	id[prefix/8] ^= 0x80 >> (prefix % 8)
	id[31] ^= byte(i)
	id[30] ^= byte(i >> 8)
	return id
}

// No bucket ever holds more than MaxPerSubnetInBucket contacts of one IPv4
// /24 or IPv6 /48, while contacts of other subnets are still admitted.
func TestTableSubnetCap(t *testing.T) {
	var self keys.NodeID
	tb := newTable(self, 20, 2)
	for i := range 50 {
		tb.add(Contact{ID: idInBucket(self, 3, i+1), Addr: fmt.Sprintf("tcp://198.51.100.%d:1", i+1)})
		tb.add(Contact{ID: idInBucket(self, 3, i+100), Addr: fmt.Sprintf("tcp://[2001:db8:1::%x]:1", i+1)})
	}
	if got := len(tb.buckets[3].entries); got != 4 {
		t.Fatalf("bucket holds %d contacts of one /24 and one /48, want 4", got)
	}
	for i := range 10 {
		tb.add(Contact{ID: idInBucket(self, 3, i+300), Addr: fmt.Sprintf("tcp://10.%d.0.1:1", i)})
	}
	if got := len(tb.buckets[3].entries); got != 14 {
		t.Fatalf("bucket holds %d contacts after 10 diverse ones, want 14", got)
	}
	// A known contact moving into the full /24 keeps its old address.
	c := tb.buckets[3].entries[5]
	tb.add(Contact{ID: c.ID, Addr: "tcp://198.51.100.200:1"})
	count := 0
	for _, e := range tb.buckets[3].entries {
		if subnetOf(e.Addr, 24, 48) == subnetOf("tcp://198.51.100.1:1", 24, 48) {
			count++
		}
	}
	if count != 2 {
		t.Fatalf("%d contacts of the /24 after a move, want 2", count)
	}
}

// A full bucket keeps its old contacts; a newcomer waits as a replacement
// and takes the place of a contact that fails.
func TestTablePrefersOld(t *testing.T) {
	var self keys.NodeID
	tb := newTable(self, 4, 0)
	var cs []Contact
	for i := range 6 {
		c := Contact{ID: idInBucket(self, 0, i+1), Addr: nodeAddr(i)}
		cs = append(cs, c)
		in := tb.add(c)
		if in != (i < 4) {
			t.Fatalf("contact %d in table: %v", i, in)
		}
	}
	if len(tb.stale()) != 1 || tb.stale()[0].ID != cs[0].ID {
		t.Fatal("stale does not name the least recently seen contact")
	}
	tb.failed(cs[1].ID)
	b := &tb.buckets[0]
	if indexOf(b.entries, cs[5].ID) < 0 || indexOf(b.entries, cs[1].ID) >= 0 || len(b.entries) != 4 {
		t.Fatal("failed contact not replaced by the newest replacement")
	}
	if got := tb.add(Contact{ID: self}); got {
		t.Fatal("self added")
	}
}

// The replica set keeps at most two nodes per /16.
func TestDiverse(t *testing.T) {
	var cs []Contact
	for i := range 10 {
		cs = append(cs, Contact{Addr: fmt.Sprintf("tcp://203.0.%d.1:1", i)})
	}
	cs = append(cs, Contact{Addr: "tcp://10.0.0.1:1"}, Contact{Addr: "quic://relay.example:443"})
	if got := diverse(cs, 20, 2); len(got) != 4 {
		t.Fatalf("diverse kept %d, want 4", len(got))
	}
	if got := diverse(cs, 20, 0); len(got) != 12 {
		t.Fatalf("diverse without cap kept %d, want 12", len(got))
	}
}
