package dir

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/overlay/descriptor"
)

// Save and Load keep the descriptors byte for byte and what the directory
// knows of each relay; Load checks every descriptor again and drops the
// ones that went stale meanwhile.
func TestSaveLoad(t *testing.T) {
	clk := &fakeClock{now: t0}
	a := New(Config{Network: "net", Now: clk.Now})
	fresh := desc(t, 1, "net", t0)
	old := desc(t, 2, "net", t0.Add(-23*time.Hour))
	a.Add(fresh)
	a.AddFrom(old, "192.0.2.9")
	a.NoteReachable(old.NodeID(), true)
	a.NoteReachable(old.NodeID(), false)
	a.NoteReachable(old.NodeID(), false)
	var buf bytes.Buffer
	if err := a.Save(&buf); err != nil {
		t.Fatal(err)
	}
	saved := buf.Bytes()

	b := New(Config{Network: "net", Now: clk.Now})
	n, err := b.Load(bytes.NewReader(saved))
	if err != nil || n != 2 {
		t.Fatalf("Load = %d, %v", n, err)
	}
	for _, d := range []*descriptor.Descriptor{fresh, old} {
		got := b.Get(d.NodeID())
		if got == nil || !bytes.Equal(got.Marshal(), d.Marshal()) {
			t.Fatal("descriptor changed by Save/Load")
		}
		ia, _ := a.Info(d.NodeID())
		ib, _ := b.Info(d.NodeID())
		if ia != ib {
			t.Errorf("info %+v, loaded %+v", ia, ib)
		}
	}
	// The /16 caps count loaded relays too, and an unconfirmed relay
	// still counts against its source.
	b.mu.Lock()
	srcs := b.sources["192.0.2.9"]
	b.mu.Unlock()
	if srcs != 1 {
		t.Errorf("source count %d after Load", srcs)
	}

	// Two hours later the 23-hour-old descriptor is stale: dropped.
	clk.Set(t0.Add(2 * time.Hour))
	c := New(Config{Network: "net", Now: clk.Now})
	if n, err := c.Load(bytes.NewReader(saved)); err != nil || n != 1 || c.Get(old.NodeID()) != nil {
		t.Errorf("Load of a stale relay = %d, %v", n, err)
	}
	// Another network's directory keeps none of them.
	if n, _ := New(Config{Network: "other", Now: clk.Now}).Load(bytes.NewReader(saved)); n != 0 {
		t.Errorf("another network loaded %d", n)
	}
	// A forged descriptor in the file is dropped.
	forged := bytes.Clone(saved)
	forged[9+2+100] ^= 1
	if n, _ := New(Config{Network: "net", Now: (&fakeClock{now: t0}).Now}).Load(bytes.NewReader(forged)); n != 1 {
		t.Errorf("forged file loaded %d, want the 1 intact", n)
	}
	// Broken files are errors, with the relays before the break kept.
	for name, bad := range map[string][]byte{
		"empty":     nil,
		"magic":     append([]byte("XXXX"), saved[4:]...),
		"version":   append(append([]byte("DMDS"), 9), saved[5:]...),
		"truncated": saved[:len(saved)-3],
	} {
		if _, err := New(Config{Network: "net", Now: clk.Now}).Load(bytes.NewReader(bad)); !errors.Is(err, errSaved) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// An empty directory round-trips.
	var empty bytes.Buffer
	New(Config{Network: "net"}).Save(&empty)
	if n, err := New(Config{Network: "net"}).Load(&empty); n != 0 || err != nil {
		t.Errorf("empty: %d, %v", n, err)
	}
}

// Load merges into a directory that holds some relays: the newer
// descriptor and the earlier first-seen time win, and MaxRelays holds.
func TestLoadMerges(t *testing.T) {
	clk := &fakeClock{now: t0}
	a := New(Config{Network: "net", Now: clk.Now})
	for i := range 3 {
		a.Add(desc(t, i, "net", t0.Add(-time.Hour)))
	}
	var buf bytes.Buffer
	a.Save(&buf)
	clk.Set(t0.Add(time.Minute))
	b := New(Config{Network: "net", Now: clk.Now, MaxRelays: 2})
	newer := desc(t, 0, "net", t0)
	b.Add(newer)
	n, err := b.Load(&buf)
	if err != nil || n != 1 || b.Len() != 2 {
		t.Fatalf("Load = %d, %v; %d relays", n, err, b.Len())
	}
	if b.Get(newer.NodeID()) != newer {
		t.Error("Load replaced a newer descriptor")
	}
	if info, _ := b.Info(newer.NodeID()); !info.FirstSeen.Equal(t0) {
		t.Errorf("first seen %v, want the saved %v", info.FirstSeen, t0)
	}
}
