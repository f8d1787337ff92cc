package dht

import (
	"context"
	"fmt"
	"testing"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// eclipser is a hostile node: it answers lookups with only its fellow
// attackers, never returns a value, and claims to store what it drops.
type eclipser struct {
	self  Contact
	gang  []Contact
	clean bool // answer honestly-shaped VALUE messages with forged records
	forge []*Record
}

func (e *eclipser) HandleRequest(_ context.Context, _ Contact, req []byte) []byte {
	m, err := ParseMessage(req)
	if err != nil {
		return nil
	}
	a := &Message{ID: m.ID, Flags: FlagServer}
	switch m.Kind {
	case KindPing:
		a.Kind = KindPong
	case KindFindNode:
		a.Kind, a.Contacts = KindNodes, e.gang
	case KindFindValue:
		a.Kind, a.Contacts, a.Records = KindValue, e.gang, e.forge
	case KindStore:
		a.Kind, a.Status = KindStored, Stored
	default:
		return nil
	}
	b, _ := a.Marshal()
	return b
}

// An attacker holding 10% of the nodes, all in one /16, with IDs ground to
// be the nearest to a key and known to every honest node, cannot censor
// the key: every Get still finds the record. The same attack with the
// subnet rule lifted shows the test has teeth.
func TestEclipseOneSubnet(t *testing.T) {
	keysTried := 4
	if raceEnabled {
		keysTried = 2
	}
	for k := range keysTried {
		t.Run(fmt.Sprint("key", k), func(t *testing.T) {
			ok, tries := runEclipse(t, uint64(10+k), false)
			if ok != tries {
				t.Fatalf("censored: %d of %d gets found the record", ok, tries)
			}
		})
	}
	t.Run("without subnet rule", func(t *testing.T) {
		ok, tries := runEclipse(t, 99, true)
		t.Logf("with AllowSameSubnet: %d of %d gets found the record", ok, tries)
		if ok == tries {
			t.Fatal("attack has no effect even without the subnet rule: the test cannot fail")
		}
	})
}

func runEclipse(t *testing.T, seed uint64, allowSame bool) (ok, tries int) {
	n := newTestNet(t, seed)
	n.tweak = func(c *Config) { c.AllowSameSubnet = allowSame }
	n.grow(180)
	n.refreshAll()
	honest := n.liveNodes()
	r := n.signed(int(seed), fmt.Sprint("target-", seed))
	// 20 attackers with IDs nearest the key (ground), one /16, each its own /24.
	var gang []Contact
	for i := range 20 {
		id := keys.NodeID(r.Key)
		id[31] ^= byte(i + 1)
		gang = append(gang, Contact{ID: id, Addr: fmt.Sprintf("tcp://203.0.%d.7:9001", i)})
	}
	for _, c := range gang {
		n.net.Attach(c, &eclipser{self: c, gang: gang})
	}
	for _, d := range honest {
		for _, c := range gang {
			d.AddContact(c)
		}
	}
	if _, err := honest[0].Put(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	for i, d := range honest[1:] {
		if raceEnabled && i%4 != 0 {
			continue
		}
		tries++
		if found(d, r) {
			ok++
		}
	}
	return ok, tries
}
