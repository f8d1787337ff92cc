package nat

import (
	"bytes"
	"encoding/hex"
	"net"
	"net/netip"
	"testing"

	"github.com/pion/stun/v3"

	"github.com/darkmatter/darkmatter/internal/testvec"
)

func seedVectors(f *testing.F, pick func(v *natVectors) []string) {
	var v natVectors
	if err := testvec.Read(vectorsFile, &v); err != nil {
		f.Fatal(err)
	}
	for _, h := range pick(&v) {
		b, err := hex.DecodeString(h)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzCandidates: decoding never panics, and what decodes re-encodes to the
// same bytes (the encoding is canonical).
func FuzzCandidates(f *testing.F) {
	seedVectors(f, func(v *natVectors) (s []string) {
		for _, c := range v.Candidates {
			s = append(s, c.Encoded)
		}
		return s
	})
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Candidates
		if c.UnmarshalBinary(b) != nil {
			return
		}
		out, err := c.MarshalBinary()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("%x decodes but re-encodes to %x (%v)", b, out, err)
		}
	})
}

// FuzzSignal: the coordination message parser.
func FuzzSignal(f *testing.F) {
	seedVectors(f, func(v *natVectors) (s []string) {
		for _, c := range v.Candidates {
			s = append(s, c.Connect, c.Sync)
		}
		return s
	})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, typ, err := ParseSignal(b)
		if err != nil {
			return
		}
		out, err := c.AppendBinary([]byte{typ})
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("%x parses but re-encodes to %x (%v)", b, out, err)
		}
	})
}

// FuzzPunchPacket: the punch packet parser.
func FuzzPunchPacket(f *testing.F) {
	seedVectors(f, func(v *natVectors) (s []string) {
		for _, p := range v.Punch {
			s = append(s, p.Encoded)
		}
		return s
	})
	f.Fuzz(func(t *testing.T, b []byte) {
		var p PunchPacket
		if p.UnmarshalBinary(b) != nil {
			return
		}
		out, _ := p.MarshalBinary()
		if !bytes.Equal(out, b) {
			t.Fatalf("%x decodes but re-encodes to %x", b, out)
		}
	})
}

// FuzzServer: whatever arrives, the server never panics, answers only
// Binding requests, and never more than MaxAnswerFactor times the request.
func FuzzServer(f *testing.F) {
	f.Add(stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw)
	f.Add(stun.MustBuild(stun.TransactionID, stun.BindingRequest, changeRequest{ip: true, port: true}, padding(16)).Raw)
	f.Add(stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.RawAttribute{Type: 0x7777, Value: []byte{1}}).Raw)
	s := NewServer(ServerConfig{Rate: 1e12, Burst: 1 << 30})
	addrs := [4]netip.AddrPort{netip.MustParseAddrPort("198.51.100.1:3478")}
	src := netip.MustParseAddrPort("192.0.2.7:4000")
	f.Fuzz(func(t *testing.T, b []byte) {
		out, _ := s.answer(b, src, addrs, [4]net.PacketConn{}, rolePrimary)
		if out == nil {
			return
		}
		if len(out) > MaxAnswerFactor*len(b) {
			t.Fatalf("%d-byte answer to %d bytes", len(out), len(b))
		}
		if m, ok := decodeSTUN(b); !ok || m.Type != stun.BindingRequest {
			t.Fatalf("answered %x, not a Binding request", b)
		}
	})
}

// FuzzProbeAnswer: the client's answer parser.
func FuzzProbeAnswer(f *testing.F) {
	tx := newTransaction(0, testBinding, netip.MustParseAddrPort("198.51.100.1:3478"), changeRequest{})
	ans := stun.MustBuild(stun.NewTransactionIDSetter(tx.id), stun.BindingSuccess,
		&stun.XORMappedAddress{IP: []byte{192, 0, 2, 7}, Port: 4000},
		&stun.OtherAddress{IP: []byte{198, 51, 100, 2}, Port: 3479})
	f.Add(ans.Raw)
	f.Fuzz(func(t *testing.T, b []byte) {
		tx := *tx
		settle(b, []*transaction{&tx})
		if tx.done && tx.code == 0 && !tx.mapped.IsValid() {
			t.Fatal("a success without a valid mapped address")
		}
	})
}
