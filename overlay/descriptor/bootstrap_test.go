package descriptor

import (
	"strings"
	"testing"
)

func TestBootstrapRoundTrip(t *testing.T) {
	d, k := testDescriptor()
	b := d.Bootstrap()
	if b.Identity != k.Identity.Public() || b.Link != k.Link.Public() || b.Addr != "tcp://192.0.2.1:9001" {
		t.Fatalf("Bootstrap() = %+v", b)
	}
	if b.NodeID() != d.NodeID() {
		t.Fatal("Bootstrap NodeID differs")
	}
	s := b.String()
	id, addr, _ := strings.Cut(s, "@")
	// A tcp address is written without its scheme.
	if len(id) != BootstrapIDLength || strings.ToLower(id) != id || addr != "192.0.2.1:9001" {
		t.Fatalf("String() = %q", s)
	}
	for _, in := range []string{s, strings.ToUpper(id) + "@" + addr, id + "@tcp://" + addr} {
		got, err := ParseBootstrap(in)
		if err != nil || got != b {
			t.Fatalf("ParseBootstrap(%q) = %+v, %v", in, got, err)
		}
	}
	for _, tt := range []struct{ addr, str string }{
		{"tcp://[2001:db8::1]:9001", "[2001:db8::1]:9001"},
		{"tcp://relay.example.org:443", "relay.example.org:443"},
		{"tcp://localhost:1", "localhost:1"},
		// Other schemes keep theirs, known or not.
		{"quic://relay.example.org:443", "quic://relay.example.org:443"},
		{"x9://[::1]:7", "x9://[::1]:7"},
	} {
		b.Addr = tt.addr
		if got := b.String(); got != id+"@"+tt.str {
			t.Fatalf("String() = %q, want ID@%s", got, tt.str)
		}
		got, err := ParseBootstrap(b.String())
		if err != nil || got != b {
			t.Fatalf("ParseBootstrap(%q) = %+v, %v", b.String(), got, err)
		}
	}
}

func TestParseBootstrapErrors(t *testing.T) {
	d, _ := testDescriptor()
	s := d.Bootstrap().String()
	id, addr, _ := strings.Cut(s, "@")
	// The last character holds 3 unused bits; a non-zero one is refused.
	last := id[len(id)-1]
	nonCanonical := id[:len(id)-1] + string(rune(last+1))
	for _, in := range []string{
		"", "@", id, id + "@", "@" + addr, id[:102] + "@" + addr, id + "a@" + addr,
		nonCanonical + "@" + addr,
		"1" + id[1:] + "@" + addr, // '1' is not base32
		"=" + id[1:] + "@" + addr,
		id + "@" + addr + "@x",
		id + "@1.2.3.4", id + "@1.2.3.4:0", id + "@::1:80", id + "@[fe80::1%eth0]:1", id + "@exa mple:1",
		id + "@" + strings.Repeat("a", 248) + ":1", // 256 bytes with "tcp://"
		id + "@tcp://", id + "@://1.2.3.4:1", id + "@TCP://1.2.3.4:1", id + "@tcp:/1.2.3.4:1",
		id + "@tcp://tcp://1.2.3.4:1", id + "@" + strings.Repeat("s", 17) + "://1.2.3.4:1",
	} {
		if _, err := ParseBootstrap(in); err == nil || !strings.HasPrefix(err.Error(), "descriptor: ") {
			t.Errorf("ParseBootstrap(%q) error = %v, want a descriptor: error", in, err)
		}
	}
}
