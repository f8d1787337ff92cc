package dht

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

func seedRecord() *Record {
	r, err := NewSigned(testNetwork, testOwner(1), "seed", []byte("value"), 7, epoch.Add(time.Hour))
	if err != nil {
		panic(err)
	}
	return r
}

// seedMessages returns one message of every kind.
func seedMessages() []*Message {
	r := seedRecord()
	cs := []Contact{{ID: keys.NodeID{1}, Addr: "tcp://192.0.2.1:9001"}, {ID: keys.NodeID{2}}}
	return []*Message{
		{Kind: KindPing, ID: 1, Flags: FlagServer},
		{Kind: KindPong, ID: 1},
		{Kind: KindFindNode, ID: 2, Target: Key{9}},
		{Kind: KindNodes, ID: 2, Contacts: cs},
		{Kind: KindFindValue, ID: 3, Type: TypeSigned, Target: r.Key},
		{Kind: KindValue, ID: 3, Records: []*Record{r}, Contacts: cs},
		{Kind: KindStore, ID: 4, Records: []*Record{r}},
		{Kind: KindStored, ID: 4, Status: ReasonRate},
	}
}

// FuzzParseRecord: ParseRecord never panics, errors carry ErrMalformed,
// and what it accepts marshals back to the same bytes.
func FuzzParseRecord(f *testing.F) {
	f.Add(seedRecord().Marshal())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRecord(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if !bytes.Equal(r.Marshal(), b) {
			t.Fatal("accepted record re-marshals differently")
		}
		_ = DefaultRegistry().Verify(r, testNetwork, epoch) // must not panic
	})
}

// FuzzParseMessage: ParseMessage never panics, errors carry ErrMalformed,
// and what it accepts marshals back to the same bytes.
func FuzzParseMessage(f *testing.F) {
	for _, m := range seedMessages() {
		b, err := m.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMessage(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		out, err := m.Marshal()
		if err != nil {
			t.Fatalf("accepted message does not marshal: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatal("accepted message re-marshals differently")
		}
	})
}

// FuzzHandleRequest: a server never panics on any request, and answers
// only with a well-formed answer echoing the request ID.
func FuzzHandleRequest(f *testing.F) {
	for _, m := range seedMessages() {
		b, _ := m.Marshal()
		f.Add(b)
	}
	net := NewMemNetwork()
	clock := newClock()
	d, err := net.NewDHT(Config{Self: Contact{ID: keys.NodeID{0xaa}}, Network: testNetwork, Server: true, Now: clock.Now})
	if err != nil {
		f.Fatal(err)
	}
	defer d.Close()
	d.AddContact(Contact{ID: keys.NodeID{0xbb}, Addr: "tcp://192.0.2.9:1"})
	from := Contact{ID: keys.NodeID{0xcc}, Addr: "tcp://192.0.2.10:1"}
	f.Fuzz(func(t *testing.T, b []byte) {
		resp := d.HandleRequest(context.Background(), from, b)
		if resp == nil {
			return
		}
		req, err := ParseMessage(b)
		if err != nil {
			t.Fatal("answered an undecodable request")
		}
		a, err := ParseMessage(resp)
		if err != nil {
			t.Fatalf("malformed answer: %v", err)
		}
		if a.ID != req.ID || a.Kind != req.Kind+1 {
			t.Fatalf("answer kind %d id %d to request kind %d id %d", a.Kind, a.ID, req.Kind, req.ID)
		}
	})
}
