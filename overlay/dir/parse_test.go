package dir

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/overlay/descriptor"
)

// Config.Parse is what turns received descriptors into stored ones, over
// gossip and DIR_GET alike: a parser that refuses everything leaves the
// directory empty and counts the descriptors as bad; one that interns
// hands the directory its shared copy.
func TestConfigParse(t *testing.T) {
	clk := &fakeClock{now: t0}
	server := gossipDir(clk, Config{})
	defer server.Close()
	for i := range 5 {
		server.Add(desc(t, i, "net", t0.Add(-time.Hour)))
	}

	refuse := gossipDir(clk, Config{Parse: func([]byte) (*descriptor.Descriptor, error) {
		return nil, errors.New("refused by the test parser")
	}})
	defer refuse.Close()
	toServer, _ := connect(refuse, server)
	res, err := refuse.Sync(context.Background(), toServer)
	if err != nil || res.Bad != 5 || res.Learned != 0 || refuse.Len() != 0 {
		t.Fatalf("refusing parser: %+v, %v, %d relays", res, err, refuse.Len())
	}

	shared := make(map[string]*descriptor.Descriptor)
	calls := 0
	intern := func(b []byte) (*descriptor.Descriptor, error) {
		calls++
		if d := shared[string(b)]; d != nil {
			return d, nil
		}
		d, err := descriptor.Parse(b)
		if err == nil {
			shared[string(b)] = d
		}
		return d, err
	}
	a := gossipDir(clk, Config{Parse: intern})
	b := gossipDir(clk, Config{Parse: intern})
	defer a.Close()
	defer b.Close()
	for _, c := range []*Directory{a, b} {
		toServer, _ := connect(c, server)
		if res, err := c.Sync(context.Background(), toServer); err != nil || res.Learned != 5 {
			t.Fatalf("interning parser: %+v, %v", res, err)
		}
	}
	toServer, _ = connect(a, server)
	if err := a.Fetch(context.Background(), toServer); err != nil {
		t.Fatal(err)
	}
	if calls != 15 || len(shared) != 5 {
		t.Errorf("%d parser calls for %d descriptors, want 15 for 5", calls, len(shared))
	}
	for _, d := range a.List() {
		if b.Get(d.NodeID()) != d {
			t.Errorf("relay %x: a and b hold different copies", d.NodeID())
		}
	}
}
