package dir

import (
	"bytes"
	"testing"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// ParseMsg refuses what it cannot decode with an error, never a panic, and
// whatever it accepts encodes back to the same bytes: one encoding per
// message.
func FuzzParseMsg(f *testing.F) {
	for _, m := range vectorMsgs() {
		f.Add(m.Marshal())
	}
	f.Add([]byte{MsgIDs, 0, 0, 1, 0, 0})
	f.Add([]byte{MsgWant, 2, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMsg(b)
		if err != nil {
			if m != nil {
				t.Fatal("a message and an error")
			}
			return
		}
		if out := m.Marshal(); !bytes.Equal(out, b) {
			t.Fatalf("re-encoded %x, was %x", out, b)
		}
	})
}

// Load never panics on a broken file, and keeps at most MaxRelays.
func FuzzLoad(f *testing.F) {
	clk := &fakeClock{now: t0}
	src := New(Config{Network: "net", Now: clk.Now})
	for i := range 2 {
		src.AddFrom(descFor(i), "192.0.2.1")
	}
	var buf bytes.Buffer
	src.Save(&buf)
	f.Add(buf.Bytes())
	f.Add([]byte("DMDS\x01\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := New(Config{Network: "net", Now: clk.Now, MaxRelays: 1})
		n, _ := d.Load(bytes.NewReader(b))
		if n > 1 || d.Len() > 1 {
			t.Fatalf("loaded %d, holds %d", n, d.Len())
		}
	})
}

// Whatever GOSSIP messages a peer sends, during a Sync round of ours in
// any stage or none, the directory neither panics nor stores more than
// MaxRelays nor anything unwanted, and keeps nothing for the link once it
// closed.
func FuzzGossip(f *testing.F) {
	want := descFor(3).NodeID()
	join := func(ms ...*Msg) []byte {
		var b []byte
		for _, m := range ms {
			p := m.Marshal()
			b = append(b, byte(len(p)>>8), byte(len(p)))
			b = append(b, p...)
		}
		return b
	}
	f.Add(join(&Msg{Type: MsgSummaryReq}, &Msg{Type: MsgIDsReq, Buckets: []byte{0, 7}}, &Msg{Type: MsgWant, Want: []keys.NodeID{want}}), byte(0))
	f.Add(join(&Msg{Type: MsgDesc, Desc: descFor(3).Marshal()}, &Msg{Type: MsgDesc, Desc: descFor(4).Marshal()}, &Msg{Type: MsgDone}), byte(stageDescs))
	f.Add(join(&Msg{Type: MsgIDs, Last: true, Answered: 1, IDs: []IDEntry{{ID: want, Published: t0.Unix()}}}, &Msg{Type: MsgBusy}), byte(stageIDs))
	f.Fuzz(func(t *testing.T, stream []byte, stage byte) {
		dir := New(Config{Network: "net", MaxRelays: 2, AnswerWindow: 2, Now: (&fakeClock{now: t0}).Now})
		defer dir.Close()
		dir.Add(descFor(7))
		p := &queuePeer{}
		s := &session{notify: make(chan struct{}, 1), stage: int(stage % 4)}
		if s.stage == 3 {
			s = nil
		} else {
			s.wanted = map[keys.NodeID]bool{want: true}
			dir.syncs[p] = s
		}
		for len(stream) >= 2 {
			n := int(stream[0])<<8 | int(stream[1])
			stream = stream[2:]
			n = min(n, len(stream))
			c := gossipCell(nil)
			if c.SetPayload(stream[:n]) != nil {
				c.Free()
				break
			}
			stream = stream[n:]
			dir.HandleCell(p, c)
		}
		for _, d := range dir.List() {
			if id := d.NodeID(); id != want && id != descFor(7).NodeID() {
				t.Fatal("stored a descriptor nobody wanted")
			}
		}
		dir.PeerClosed(p)
		if st := dir.Stats(); dir.Len() > 2 || st.Peers != 0 || st.Syncing != 0 || st.Answering != 0 || dir.wanting != 0 {
			t.Fatalf("%d relays, stats %+v, %d wanting", dir.Len(), st, dir.wanting)
		}
		p.drain()
	})
}
