package nat

import (
	"net"
	"net/netip"
	"testing"

	"github.com/pion/stun/v3"
)

func BenchmarkCandidatesMarshal(b *testing.B) {
	c := Candidates{Addrs: []netip.AddrPort{netip.MustParseAddrPort("192.168.0.2:4000"), netip.MustParseAddrPort("[2001:db8::7]:443")}}
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		_, _ = c.AppendBinary(buf[:0])
	}
}

func BenchmarkPunchPacketParse(b *testing.B) {
	raw, _ := PunchPacket{Nonce: [NonceSize]byte{1}}.MarshalBinary()
	var p PunchPacket
	b.ReportAllocs()
	for b.Loop() {
		_ = p.UnmarshalBinary(raw)
	}
}

// BenchmarkServerAnswer is the per-request cost of the STUN server, rate
// limiter included.
func BenchmarkServerAnswer(b *testing.B) {
	s := NewServer(ServerConfig{Rate: 1e12, Burst: 1 << 30})
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, padding(requestPadding)).Raw
	addrs := [4]netip.AddrPort{netip.MustParseAddrPort("198.51.100.1:3478")}
	src := netip.MustParseAddrPort("192.0.2.7:4000")
	b.ReportAllocs()
	for b.Loop() {
		if out, _ := s.answer(req, src, addrs, [4]net.PacketConn{}, rolePrimary); out == nil {
			b.Fatal("no answer")
		}
	}
}
