package exitpolicy

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestParseCanonical(t *testing.T) {
	tests := []struct{ in, want string }{
		{"accept *:*", "accept *:*"},
		{"accept *", "accept *:*"},
		{"reject *:*", "reject *:*"},
		{"reject private:*,accept *:*", "reject private:*,accept *:*"},
		{"  REJECT   Private , Accept *:80 ", "reject private:*,accept *:80"},
		{"accept 1.2.3.4", "accept 1.2.3.4:*"},
		{"accept 1.2.3.4/32:1-65535", "accept 1.2.3.4:*"},
		{"accept 1.2.3.4/8:443", "accept 1.0.0.0/8:443"},
		{"accept 0.0.0.0/0:080-0443", "accept 0.0.0.0/0:80-443"},
		{"accept 10.0.0.0/8:22-22", "accept 10.0.0.0/8:22"},
		{"accept [2001:db8::/32]:443", "accept [2001:db8::/32]:443"},
		{"accept [2001:DB8::1]", "accept [2001:db8::1]:*"},
		{"accept [2001:db8::1/128]:*", "accept [2001:db8::1]:*"},
		{"accept [2001:db8::1/16]:1", "accept [2001::/16]:1"},
		{"accept [::/0]", "accept [::/0]:*"},
		{"accept [::ffff:1.2.3.4]:80", "accept 1.2.3.4:80"},
		{"accept [::ffff:1.2.3.4/120]:80", "accept 1.2.3.0/24:80"},
		{"accept [::ffff:0:0/96]:80", "accept 0.0.0.0/0:80"},
		{"accept [::ffff:0:0/95]:80", "accept [::fffe:0:0/95]:80"},
		{"reject\t1.1.1.1:65535,accept *:1", "reject 1.1.1.1:65535,accept *:1"},
	}
	for _, tt := range tests {
		p, err := Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if got := p.String(); got != tt.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tt.in, got, tt.want)
		}
		again, err := Parse(p.String())
		if err != nil || !again.Equal(p) || again.String() != p.String() {
			t.Errorf("Parse(String()) of %q = %v, %v", tt.in, again, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{
		"", " ", ",", "accept *:*,", ",accept *:*", "accept *:*,,reject *:*",
		"accept", "accept*:*", "allow *:*", "accept * :80", "accept *:*:*",
		"accept *:", "accept *:0", "accept *:65536", "accept *:-1", "accept *:+80",
		"accept *:80-", "accept *:-80", "accept *:90-80", "accept *:1-2-3", "accept *:x",
		"accept 1.2.3:80", "accept 1.2.3.4/33", "accept 1.2.3.4/-1", "accept 256.0.0.1",
		"accept ::1", "accept ::1:80", "accept 2001:db8::/32", "accept [::1", "accept [::1]80",
		"accept [1.2.3.4]", "accept [::1/129]", "accept [fe80::1%eth0]", "accept [fe80::1%eth0/64]",
		"accept [::1]:", "accept []", "accept localhost:80", "accept privat", "accept **",
		"accept 1.2.3.4 /8", "accept 01.2.3.4",
		strings.Repeat("accept *:*,", MaxRules) + "accept *:*",
	} {
		p, err := Parse(in)
		if err == nil {
			t.Errorf("Parse(%q) = %q, want an error", in, p)
			continue
		}
		if !errors.Is(err, ErrSyntax) || !strings.HasPrefix(err.Error(), "exitpolicy: ") {
			t.Errorf("Parse(%q) error %q: want an exitpolicy: error wrapping ErrSyntax", in, err)
		}
	}
	if _, err := Parse(strings.TrimSuffix(strings.Repeat("accept *:*,", MaxRules), ",")); err != nil {
		t.Errorf("%d rules refused: %v", MaxRules, err)
	}
}

func TestAllows(t *testing.T) {
	ip := netip.MustParseAddr
	type q struct {
		ip   string
		port uint16
		want bool
	}
	tests := []struct {
		policy string
		cases  []q
	}{
		{"reject private:*,accept *:*", []q{
			{"8.8.8.8", 53, true}, {"2001:4860:4860::8888", 443, true},
			{"127.0.0.1", 80, false}, {"10.1.2.3", 80, false}, {"192.168.1.1", 80, false},
			{"172.16.0.1", 80, false}, {"172.31.255.255", 80, false}, {"172.32.0.1", 80, true},
			{"100.64.0.1", 80, false}, {"100.128.0.1", 80, true}, {"169.254.169.254", 80, false},
			{"0.0.0.0", 80, false}, {"224.0.0.1", 80, false}, {"255.255.255.255", 80, false},
			{"::", 80, false}, {"::1", 80, false}, {"fd00::1", 80, false}, {"fe80::1", 80, false},
			{"fe80::1%eth0", 80, false}, {"ff02::1", 80, false},
			{"::ffff:127.0.0.1", 80, false}, {"::ffff:8.8.8.8", 80, true},
			{"64:ff9b::a00:1", 80, false}, {"64:ff9b::808:808", 80, true},
			{"2002:7f00:1::", 80, false}, {"2002:808:808::1", 80, true},
			{"8.8.8.8", 0, false},
		}},
		{"accept *:*", []q{{"127.0.0.1", 1, true}, {"::1", 65535, true}, {"::ffff:127.0.0.1", 9, true}, {"1.1.1.1", 0, false}}},
		{"reject *:*", []q{{"8.8.8.8", 80, false}, {"127.0.0.1", 80, false}}},
		{"accept *:80,accept *:443,reject *:*", []q{{"8.8.8.8", 80, true}, {"8.8.8.8", 443, true}, {"8.8.8.8", 22, false}, {"10.0.0.1", 80, true}}},
		{"reject 1.2.3.0/24:*,accept 1.2.0.0/16:1000-2000", []q{
			{"1.2.3.4", 1500, false}, {"1.2.4.4", 1500, true}, {"1.2.4.4", 999, false},
			{"1.2.4.4", 2000, true}, {"1.2.4.4", 2001, false}, {"1.3.0.0", 1500, false},
		}},
		{"accept [2001:db8::/32]:443", []q{{"2001:db8::1", 443, true}, {"2001:db9::1", 443, false}, {"2001:db8::1", 80, false}, {"1.2.3.4", 443, false}}},
		{"accept 0.0.0.0/0:*", []q{{"8.8.8.8", 1, true}, {"::ffff:8.8.8.8", 1, true}, {"2001::1", 1, false}}},
		{"accept [::/0]:*", []q{{"2001::1", 1, true}, {"::ffff:8.8.8.8", 1, false}, {"8.8.8.8", 1, false}}},
		{"accept [::ffff:1.2.3.4]:80", []q{{"1.2.3.4", 80, true}, {"::ffff:1.2.3.4", 80, true}}},
	}
	for _, tt := range tests {
		p, err := Parse(tt.policy)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range tt.cases {
			if got := p.Allows(ip(c.ip), c.port); got != c.want {
				t.Errorf("%q.Allows(%s, %d) = %v, want %v", tt.policy, c.ip, c.port, got, c.want)
			}
		}
		if p.Allows(netip.Addr{}, 80) {
			t.Errorf("%q allows the zero Addr", tt.policy)
		}
	}
}

func TestPredefined(t *testing.T) {
	for _, tt := range []struct {
		p    *Policy
		want string
		exit bool
	}{
		{Default(), "reject private:*,accept *:*", true},
		{AcceptAll(), "accept *:*", true},
		{RejectAll(), "reject *:*", false},
		{nil, "reject *:*", false},
		{&Policy{}, "reject *:*", false},
	} {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
		if tt.p.IsExit() != tt.exit {
			t.Errorf("%q.IsExit() = %v", tt.want, !tt.exit)
		}
	}
	if !AcceptAll().Allows(netip.MustParseAddr("127.0.0.1"), 8080) {
		t.Error("AcceptAll refuses loopback")
	}
	if Default().Allows(netip.MustParseAddr("127.0.0.1"), 8080) {
		t.Error("Default allows loopback")
	}
	var nilPolicy *Policy
	if nilPolicy.Allows(netip.MustParseAddr("8.8.8.8"), 80) || nilPolicy.AllowsPort(80) {
		t.Error("nil policy allows something")
	}
	if !RejectAll().Equal(nilPolicy) || Default().Equal(AcceptAll()) {
		t.Error("Equal is wrong")
	}
}

func TestIsPrivate(t *testing.T) {
	for _, s := range []string{
		"0.1.2.3", "10.255.0.1", "100.127.255.255", "127.0.0.1", "169.254.0.1", "172.20.0.1",
		"192.168.0.1", "224.1.1.1", "239.255.255.255", "240.0.0.1", "255.255.255.255",
		"::", "::1", "fc00::1", "fdff::1", "fe80::1", "febf::1", "ff00::1", "::ffff:10.0.0.1",
		"::ffff:192.168.1.1", "64:ff9b::7f00:1", "64:ff9b::c0a8:101", "2002:a00:1::1", "2002:c0a8:101::",
		// IETF protocol assignments, benchmarking, documentation.
		"192.0.0.0", "192.0.0.8", "192.0.0.170", "192.0.0.255", "198.18.0.0", "198.19.255.255",
		"192.0.2.1", "198.51.100.7", "203.0.113.9", "::ffff:198.18.0.1", "64:ff9b::c612:1", "2002:c000:201::",
		// IPv4-compatible (deprecated), local-use NAT64, discard, dummy.
		"::2", "::1.2.3.4", "::8.8.8.8", "::ffff:ffff", "64:ff9b:1::", "64:ff9b:1::a00:1",
		"64:ff9b:1:ffff:ffff:ffff:ffff:ffff", "100::", "100::1", "100::1:0:0:1",
		// IETF protocol assignments (Teredo, anycast), documentation, SRv6,
		// site-local (deprecated).
		"2001::", "2001::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:1::1", "2001:1ff:ffff::",
		"2001:db8::1", "3fff::1", "3fff:fff:ffff::", "5f00::1", "5f00:ffff::", "fec0::", "fec0::1", "feff::1",
	} {
		if !IsPrivate(netip.MustParseAddr(s)) {
			t.Errorf("IsPrivate(%s) = false", s)
		}
	}
	for _, s := range []string{
		"1.1.1.1", "8.8.8.8", "100.63.255.255", "100.128.0.0", "172.15.255.255", "172.32.0.0",
		"192.167.255.255", "223.255.255.255", "2606:4700::1111",
		"::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::",
		// Just outside the ranges added for issue 11.
		"191.255.255.255", "192.0.1.0", "192.0.1.255", "192.0.3.0", "198.17.255.255", "198.20.0.0",
		"198.51.99.255", "198.51.101.0", "203.0.112.255", "203.0.114.0",
		"::1:0:0", "64:ff9b:0:1::", "64:ff9b:2::1", "100:0:0:2::", "2001:200::1", "2001:db9::1",
		"3fff:1000::1", "5eff:ffff::1", "5f01::1", "fe7f::1", "ff::1",
	} {
		if IsPrivate(netip.MustParseAddr(s)) {
			t.Errorf("IsPrivate(%s) = true", s)
		}
	}
	if !IsPrivate(netip.Addr{}) {
		t.Error("the zero Addr is not private")
	}
}

// The default policy rejects each range added by issue 11, on every port,
// in each IPv6 form that embeds an IPv4 one.
func TestDefaultRejectsSpecialRanges(t *testing.T) {
	for _, s := range []string{
		"64:ff9b:1::1", "64:ff9b:1::c633:6407", "192.0.0.1", "192.0.0.255", "198.18.0.1",
		"198.19.255.254", "fec0::1", "fecd:1234::5", "::1.2.3.4", "::8.8.8.8", "::2",
		"::ffff:198.18.0.1", "64:ff9b::c000:1", "2002:c612:1::", "100::1", "2001::1", "2001:db8::1",
	} {
		for _, port := range []uint16{1, 80, 443, 65535} {
			if Default().Allows(netip.MustParseAddr(s), port) {
				t.Errorf("Default allows %s:%d", s, port)
			}
		}
	}
}

// An exit's own addresses are refused wherever its policy refuses
// private destinations, in every form that reaches them, and accepted
// where it accepts them; the policy's text does not change.
func TestWithOwnAddrs(t *testing.T) {
	ip := netip.MustParseAddr
	own := []netip.Addr{ip("1.2.3.4"), ip("2606:4700::1111"), ip("::ffff:5.6.7.8"), ip("fe80::1%eth0"), {}, ip("1.2.3.4")}
	p := Default().WithOwnAddrs(own...)
	for _, tt := range []struct {
		ip   string
		want bool
	}{
		{"1.2.3.4", false}, {"::ffff:1.2.3.4", false}, {"64:ff9b::102:304", false}, {"2002:102:304::1", false},
		{"2606:4700::1111", false}, {"5.6.7.8", false}, {"fe80::1", false}, {"127.0.0.1", false},
		{"1.2.3.5", true}, {"2606:4700::1112", true}, {"8.8.8.8", true}, {"64:ff9b::808:808", true},
	} {
		for _, port := range []uint16{22, 443} {
			if got := p.Allows(ip(tt.ip), port); got != tt.want {
				t.Errorf("Default().WithOwnAddrs.Allows(%s, %d) = %v, want %v", tt.ip, port, got, tt.want)
			}
		}
	}
	if !Default().Allows(ip("1.2.3.4"), 80) {
		t.Error("WithOwnAddrs changed Default")
	}
	if p.String() != Default().String() {
		t.Errorf("String() = %q, want the default's text", p)
	}
	if p.Equal(Default()) || !p.Equal(Default().WithOwnAddrs(own...)) {
		t.Error("Equal ignores own addresses")
	}
	// Added to, not replaced.
	q := p.WithOwnAddrs(ip("9.9.9.9"))
	if q.Allows(ip("9.9.9.9"), 80) || q.Allows(ip("1.2.3.4"), 80) || !q.Allows(ip("9.9.9.8"), 80) {
		t.Error("a second WithOwnAddrs lost addresses or added too many")
	}
	// A policy that accepts private destinations accepts the exit itself.
	if !AcceptAll().WithOwnAddrs(ip("1.2.3.4")).Allows(ip("1.2.3.4"), 80) {
		t.Error("AcceptAll refuses an own address")
	}
	ssh, err := Parse("reject private:22,accept *:*")
	if err != nil {
		t.Fatal(err)
	}
	ssh = ssh.WithOwnAddrs(ip("1.2.3.4"))
	if ssh.Allows(ip("1.2.3.4"), 22) || !ssh.Allows(ip("1.2.3.4"), 80) {
		t.Error("own addresses do not follow the private rule's ports")
	}
	var nilPolicy *Policy
	if nilPolicy.WithOwnAddrs(ip("1.2.3.4")) != nil {
		t.Error("nil policy grew rules")
	}
	// The analysis sees the own addresses as the private pattern's.
	priv, err := Parse("accept private:80,reject *:*")
	if err != nil {
		t.Fatal(err)
	}
	if priv.AllowsPort(80) || !priv.WithOwnAddrs(ip("1.2.3.4")).AllowsPort(80) {
		t.Error("AllowsPort ignores own addresses")
	}
}
