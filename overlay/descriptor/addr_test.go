package descriptor

import (
	"strings"
	"testing"
	"time"
)

func TestSplitAddr(t *testing.T) {
	for _, tt := range []struct{ in, scheme, hostport string }{
		{"tcp://192.0.2.1:9001", "tcp", "192.0.2.1:9001"},
		{"tcp://[2001:db8::1]:1", "tcp", "[2001:db8::1]:1"},
		{"quic://relay.example.org:443", "quic", "relay.example.org:443"},
		{"q://a:1", "q", "a:1"},
		{"a0b1c2d3e4f5g6h7://a:1", "a0b1c2d3e4f5g6h7", "a:1"}, // 16 bytes
		{"tcp://" + strings.Repeat("a", 243) + ":65535", "tcp", strings.Repeat("a", 243) + ":65535"},
	} {
		scheme, hostport, err := SplitAddr(tt.in)
		if err != nil || scheme != tt.scheme || hostport != tt.hostport {
			t.Errorf("SplitAddr(%q) = %q, %q, %v", tt.in, scheme, hostport, err)
			continue
		}
		if JoinAddr(scheme, hostport) != tt.in {
			t.Errorf("JoinAddr(%q, %q) = %q", scheme, hostport, JoinAddr(scheme, hostport))
		}
		if n, err := NormalizeAddr(tt.in); err != nil || n != tt.in {
			t.Errorf("NormalizeAddr(%q) = %q, %v", tt.in, n, err)
		}
	}
	for _, in := range []string{
		"", "192.0.2.1:9001", "tcp:192.0.2.1:9001", "tcp:/192.0.2.1:9001", "tcp://", "://a:1",
		"TCP://a:1", "Tcp://a:1", "1tcp://a:1", "t-p://a:1", "t_p://a:1", "t.p://a:1", "tcp ://a:1",
		"a0b1c2d3e4f5g6h7i://a:1", // 17 bytes
		"tcp://a", "tcp://a:0", "tcp://a:01", "tcp://::1:80", "tcp://[a.b]:1", "tcp://[1.2.3.4]:1",
		"tcp://[fe80::1%eth0]:1", "tcp://a b:1", "tcp://tcp://a:1", "tcp://a/b:1",
		"tcp://" + strings.Repeat("a", 244) + ":65535", // 256 bytes
	} {
		if s, hp, err := SplitAddr(in); err == nil || !strings.HasPrefix(err.Error(), "descriptor: ") {
			t.Errorf("SplitAddr(%q) = %q, %q, %v; want a descriptor: error", in, s, hp, err)
		}
	}
}

func TestNormalizeAddr(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"192.0.2.1:9001", "tcp://192.0.2.1:9001"},
		{"[::1]:80", "tcp://[::1]:80"},
		{"localhost:1", "tcp://localhost:1"},
		{"tcp://localhost:1", "tcp://localhost:1"},
		{"quic://localhost:1", "quic://localhost:1"},
	} {
		if got, err := NormalizeAddr(tt.in); err != nil || got != tt.want {
			t.Errorf("NormalizeAddr(%q) = %q, %v, want %q", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "a", "a:0", "Q://a:1", strings.Repeat("a", 247) + ":80"} {
		if got, err := NormalizeAddr(in); err == nil || !strings.HasPrefix(err.Error(), "descriptor: ") {
			t.Errorf("NormalizeAddr(%q) = %q, %v; want a descriptor: error", in, got, err)
		}
	}
}

// Sign gives bare addresses the tcp scheme without touching the caller's
// slice; Parse requires the scheme.
func TestSignNormalizesAddrs(t *testing.T) {
	k := testKeys()
	addrs := []string{"127.0.0.1:7001", "quic://127.0.0.1:7001", "tcp://[::1]:7001"}
	d := &Descriptor{Network: "n", KEM: *k.KEM.Public(), ExitPolicy: "reject *:*", Addrs: addrs,
		OnionExpires: time.Unix(2, 0).UTC(), Published: time.Unix(1, 0).UTC()}
	d.Sign(k.Identity)
	want := []string{"tcp://127.0.0.1:7001", "quic://127.0.0.1:7001", "tcp://[::1]:7001"}
	if strings.Join(d.Addrs, " ") != strings.Join(want, " ") {
		t.Fatalf("Addrs after Sign = %q, want %q", d.Addrs, want)
	}
	if addrs[0] != "127.0.0.1:7001" {
		t.Fatal("Sign changed the caller's slice")
	}
	got, err := Parse(d.Marshal())
	if err != nil || !sameFields(got, d) {
		t.Fatalf("Parse = %+v, %v", got, err)
	}
	if hp, ok := got.Addr(SchemeTCP); !ok || hp != "127.0.0.1:7001" {
		t.Fatalf("Addr(tcp) = %q, %v", hp, ok)
	}
	if hp, ok := got.Addr("quic"); !ok || hp != "127.0.0.1:7001" {
		t.Fatalf("Addr(quic) = %q, %v", hp, ok)
	}
	if hp, ok := got.Addr("udp"); ok {
		t.Fatalf("Addr(udp) = %q, true", hp)
	}

	// A bare address in the wire form is refused.
	bare := *d
	bare.Addrs = []string{"127.0.0.1:7001"}
	bare.Signature = k.Identity.Sign(signedMessage(bare.marshalBody()))
	if _, err := Parse(bare.Marshal()); err == nil || !strings.Contains(err.Error(), "has no scheme") {
		t.Fatalf("Parse of a bare address: %v", err)
	}
	// An unknown scheme parses: nodes skip what they cannot reach.
	d.Addrs = []string{"carrierpigeon://loft.example:1"}
	d.Sign(k.Identity)
	if _, err := Parse(d.Marshal()); err != nil {
		t.Fatalf("unknown scheme: %v", err)
	}
}
