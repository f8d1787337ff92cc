package exitpolicy

import (
	"net/netip"
	"testing"
)

func BenchmarkAllows(b *testing.B) {
	p := Default()
	ip := netip.MustParseAddr("93.184.216.34")
	b.ReportAllocs()
	for b.Loop() {
		p.Allows(ip, 443)
	}
}

func BenchmarkAllowsPort(b *testing.B) {
	p := mustParse("reject private:*,accept *:80,accept *:443,reject *:*")
	b.ReportAllocs()
	for b.Loop() {
		p.AllowsPort(443)
	}
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Parse("reject private:*,accept *:80,accept *:443,reject *:*")
	}
}
