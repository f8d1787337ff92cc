package nat

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/internal/testvec"
)

// vectorsFile is the JSON test vector file of spec/nat.md.
const vectorsFile = "nat.json"

type natVectors struct {
	Comment    string         `json:"comment"`
	Candidates []vecCandidate `json:"candidates"`
	Punch      []vecPunch     `json:"punch"`
}

type vecCandidate struct {
	Nonce   string   `json:"nonce"`
	RTTus   int64    `json:"rtt_us"`
	Addrs   []string `json:"addrs"`
	Encoded string   `json:"encoded"`
	Connect string   `json:"connect"` // signal message type 1
	Sync    string   `json:"sync"`    // signal message type 2 (nonce and RTT only)
}

type vecPunch struct {
	Ack     bool   `json:"ack"`
	Nonce   string `json:"nonce"`
	Sender  string `json:"sender"`
	Encoded string `json:"encoded"`
}

func generateNATVectors() *natVectors {
	hexSeq := func(start byte, n int) string {
		const digits = "0123456789abcdef"
		var s []byte
		for _, b := range testvec.Seq(start, n) {
			s = append(s, digits[b>>4], digits[b&15])
		}
		return string(s)
	}
	return &natVectors{
		Comment: "darkmatter NAT traversal vectors (spec/nat.md §4, §5). Hex unless noted. candidates: encoded is the " +
			"Candidates encoding of nonce, rtt_us (microseconds) and addrs; connect and sync are the coordination messages " +
			"carrying it (sync without addresses). punch: encoded is the punch packet. Checked by nat TestVectors " +
			"(go test ./nat -run TestVectors -update rewrites this file).",
		Candidates: []vecCandidate{
			{Nonce: hexSeq(0x10, 16), RTTus: 42500, Addrs: []string{"192.168.0.2:4000", "203.0.113.1:20000", "[2001:db8::7]:443"}},
			{Nonce: hexSeq(0xf0, 16), RTTus: 0},
		},
		Punch: []vecPunch{
			{Nonce: hexSeq(0x10, 16), Sender: hexSeq(0xa0, 8)},
			{Ack: true, Nonce: hexSeq(0x10, 16), Sender: hexSeq(0xb0, 8)},
		},
	}
}

func TestVectors(t *testing.T) {
	v := testvec.LoadOrGenerate(t, vectorsFile, generateNATVectors)
	for i := range v.Candidates {
		vc := &v.Candidates[i]
		c := Candidates{Nonce: [NonceSize]byte(testvec.Hex(t, vc.Nonce)), RTT: time.Duration(vc.RTTus) * time.Microsecond}
		for _, a := range vc.Addrs {
			c.Addrs = append(c.Addrs, netip.MustParseAddrPort(a))
		}
		enc, err := c.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		testvec.CheckHex(t, "candidates", &vc.Encoded, enc)
		conn, _ := c.AppendBinary([]byte{msgConnect})
		testvec.CheckHex(t, "connect", &vc.Connect, conn)
		sync, _ := Candidates{Nonce: c.Nonce, RTT: c.RTT}.AppendBinary([]byte{msgSync})
		testvec.CheckHex(t, "sync", &vc.Sync, sync)
		var back Candidates
		if err := back.UnmarshalBinary(testvec.Hex(t, vc.Encoded)); err != nil || !reflect.DeepEqual(back, c) {
			t.Fatalf("the file's candidates decode to %+v (%v), want %+v", back, err, c)
		}
		if got, typ, err := ParseSignal(testvec.Hex(t, vc.Connect)); err != nil || typ != msgConnect || !reflect.DeepEqual(got, c) {
			t.Fatalf("the file's CONNECT parses to %+v %d (%v)", got, typ, err)
		}
	}
	for i := range v.Punch {
		vp := &v.Punch[i]
		p := PunchPacket{Ack: vp.Ack, Nonce: [NonceSize]byte(testvec.Hex(t, vp.Nonce)), Sender: [SenderIDSize]byte(testvec.Hex(t, vp.Sender))}
		enc, _ := p.MarshalBinary()
		testvec.CheckHex(t, "punch", &vp.Encoded, enc)
		var back PunchPacket
		if err := back.UnmarshalBinary(testvec.Hex(t, vp.Encoded)); err != nil || back != p {
			t.Fatalf("the file's punch packet decodes to %+v (%v)", back, err)
		}
	}
	if testvec.Update() && !t.Failed() {
		testvec.Save(t, vectorsFile, v)
	}
}
