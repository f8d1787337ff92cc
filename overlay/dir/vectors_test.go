package dir

import (
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/testvec"
)

const gossipVectorsFile = "gossip.json"

type gossipVectors struct {
	Comment           string          `json:"comment"`
	BucketHashContext string          `json:"bucket_hash_context"`
	Summary           summaryVector   `json:"summary"`
	Messages          []messageVector `json:"messages"`
	Bad               []messageVector `json:"bad"`
}

type summaryVector struct {
	Entries []entryVector     `json:"entries"`
	Hashes  map[string]string `json:"hashes"` // bucket (decimal) → 8-byte hash, non-empty buckets only
	Encoded string            `json:"encoded"`
}

type entryVector struct {
	NodeID    string `json:"node_id"`
	Published int64  `json:"published"`
}

type messageVector struct {
	Name    string `json:"name"`
	Encoded string `json:"encoded"`
}

func nodeID(b byte, rest byte) keys.NodeID {
	var id keys.NodeID
	copy(id[:], testvec.Seq(rest, len(id)))
	id[0] = b
	return id
}

// vectorMsgs are the messages of the vector file, one of each type.
func vectorMsgs() []*Msg {
	return []*Msg{
		{Type: MsgSummaryReq},
		{Type: MsgIDsReq, Buckets: []byte{0x00, 0x12, 0xff}},
		{Type: MsgIDs, IDs: []IDEntry{{nodeID(0x12, 1), 1767225600}, {nodeID(0x12, 9), 1767229200}}},
		{Type: MsgIDs, Last: true, Answered: 3, IDs: []IDEntry{{nodeID(0xff, 3), 1767232800}}},
		{Type: MsgWant, More: true, Want: []keys.NodeID{nodeID(0x12, 1)}},
		{Type: MsgWant, Want: []keys.NodeID{nodeID(0xff, 3), nodeID(0x12, 9)}},
		{Type: MsgDesc, Desc: []byte("DMRD...a descriptor as spec/descriptor.md encodes it")},
		{Type: MsgDone, Status: DoneComplete},
		{Type: MsgDone, Status: DoneCut},
		{Type: MsgBusy, Refused: MsgIDsReq},
	}
}

var vectorMsgNames = []string{"SUMMARY_REQ", "IDS_REQ (buckets 0, 18, 255)", "IDS (two entries, more follow)",
	"IDS (last, answered 3)", "WANT (more follow)", "WANT (last)", "DESC (body not a valid descriptor: ParseMsg only bounds it)",
	"DONE complete", "DONE cut", "BUSY (an IDS_REQ refused)"}

func generateGossipVectors() *gossipVectors {
	v := &gossipVectors{
		Comment: "darkmatter gossip messages (spec/gossip.md). Hex. 'encoded' is the GOSSIP cell payload (after the cell's 2-byte length). " +
			"summary: the SUMMARY of the entries; hashes lists the non-empty buckets. bad: payloads ParseMsg must refuse. " +
			"Checked by overlay/dir TestGossipVectors (go test -run TestGossipVectors -update rewrites this file).",
		Summary: summaryVector{Entries: []entryVector{
			{hex.EncodeToString(idBytes(nodeID(0x12, 9))), 1767229200},
			{hex.EncodeToString(idBytes(nodeID(0x12, 1))), 1767225600},
			{hex.EncodeToString(idBytes(nodeID(0xff, 3))), 1767232800},
		}},
	}
	for i := range vectorMsgs() {
		v.Messages = append(v.Messages, messageVector{Name: vectorMsgNames[i]})
	}
	for _, b := range []struct{ name, hex string }{
		{"empty", ""},
		{"unknown type", "09"},
		{"SUMMARY_REQ with a body", "0100"},
		{"SUMMARY too short", "02" + "00000001"},
		{"IDS_REQ of no bucket", "030000"},
		{"IDS_REQ not ascending", "0300021200"},
		{"IDS_REQ count and length differ", "03000300"},
		{"IDS unknown flag", "0402000000"},
		{"IDS answered without last", "0400000100" + "00"},
		{"IDS entries not ascending", "040100010002" + "12" + hex.EncodeToString(testvec.Seq(9, 31)) + "0000000069556d10" + "12" + hex.EncodeToString(testvec.Seq(1, 31)) + "0000000069556d10"},
		{"IDS published 0", "04010001" + "0001" + hex.EncodeToString(testvec.Seq(1, 32)) + "0000000000000000"},
		{"WANT unknown flag", "05020000"},
		{"WANT truncated", "05000001" + "00"},
		{"DESC empty", "06"},
		{"DONE without status", "07"},
		{"BUSY with two bytes", "080303"},
	} {
		v.Bad = append(v.Bad, messageVector{Name: b.name, Encoded: b.hex})
	}
	return v
}

func TestGossipVectors(t *testing.T) {
	v := testvec.LoadOrGenerate(t, gossipVectorsFile, generateGossipVectors)
	testvec.Check(t, "bucket_hash_context", &v.BucketHashContext, BucketHashContext)
	var ids []IDEntry
	for _, e := range v.Summary.Entries {
		var id keys.NodeID
		copy(id[:], testvec.Hex(t, e.NodeID))
		ids = append(ids, IDEntry{ID: id, Published: e.Published})
	}
	sum := summaryOf(ids)
	if testvec.Update() {
		v.Summary.Hashes = map[string]string{}
	}
	for b, h := range sum.Hashes {
		if h == 0 {
			continue
		}
		key := fmt.Sprint(b)
		field := v.Summary.Hashes[key]
		testvec.Check(t, "summary hash of bucket "+key, &field, fmt.Sprintf("%016x", h))
		v.Summary.Hashes[key] = field
	}
	if len(v.Summary.Hashes) != 2 {
		t.Errorf("%d non-empty buckets, want 2", len(v.Summary.Hashes))
	}
	testvec.CheckHex(t, "summary", &v.Summary.Encoded, sum.Marshal())
	if m, err := ParseMsg(testvec.Hex(t, v.Summary.Encoded)); err != nil || m.Hashes != sum.Hashes || m.Relays != 3 {
		t.Errorf("summary does not parse back: %v", err)
	}
	msgs := vectorMsgs()
	if len(v.Messages) != len(msgs) {
		t.Fatalf("%d message vectors, want %d", len(v.Messages), len(msgs))
	}
	for i, m := range msgs {
		mv := &v.Messages[i]
		testvec.CheckHex(t, mv.Name, &mv.Encoded, m.Marshal())
		got, err := ParseMsg(testvec.Hex(t, mv.Encoded))
		if err != nil || got.Type != m.Type {
			t.Errorf("%s: ParseMsg: %v", mv.Name, err)
			continue
		}
		if fmt.Sprint(got) != fmt.Sprint(m) && m.Type != MsgDesc {
			t.Errorf("%s: parsed %+v, want %+v", mv.Name, got, m)
		}
	}
	for _, bv := range v.Bad {
		if _, err := ParseMsg(testvec.Hex(t, bv.Encoded)); err == nil {
			t.Errorf("bad %q accepted", bv.Name)
		}
	}
	if testvec.Update() {
		testvec.Save(t, gossipVectorsFile, v)
	}
}

func idBytes(id keys.NodeID) []byte { return id[:] }
