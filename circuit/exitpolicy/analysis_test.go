package exitpolicy

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestAllowsPortAndIsExit(t *testing.T) {
	tests := []struct {
		policy string
		exit   bool
		ports  map[uint16]bool
	}{
		{"reject private:*,accept *:*", true, map[uint16]bool{1: true, 80: true, 65535: true, 0: false}},
		{"accept *:*", true, map[uint16]bool{80: true}},
		{"reject *:*", false, map[uint16]bool{80: false}},
		{"accept private:*,reject *:*", true, map[uint16]bool{80: false}},
		{"accept 127.0.0.1:8080", true, map[uint16]bool{8080: false, 80: false}},
		{"accept 8.8.8.8:53", true, map[uint16]bool{53: true, 54: false}},
		{"reject *:25,accept *:*", true, map[uint16]bool{25: false, 24: true, 26: true}},
		{"reject 0.0.0.0/0:*,accept *:443", true, map[uint16]bool{443: true}}, // IPv6 still open
		{"reject 0.0.0.0/0:*,reject [::/0]:*,accept *:*", false, map[uint16]bool{443: false}},
		{"reject 0.0.0.0/1:*,reject 128.0.0.0/1:*,accept 0.0.0.0/0:*", false, map[uint16]bool{1: false}},
		{"reject 0.0.0.0/1:*,reject 128.0.0.0/2:*,accept 0.0.0.0/0:*", true, map[uint16]bool{1: true}},
		{"reject *:1-100,reject *:101-65535,accept *:*", false, map[uint16]bool{50: false}},
		{"reject *:1-100,reject *:102-65535,accept *:*", true, map[uint16]bool{101: true, 100: false, 102: false}},
		// The IPv6 half is only IPv4-mapped space, which is matched as IPv4.
		{"reject 0.0.0.0/0:*,accept [::ffff:0:0/96]:*", false, nil},
		// Only NAT64-embedded private addresses are accepted.
		{"accept [64:ff9b::a00:0/104]:*", true, map[uint16]bool{80: false}},
		{"accept [64:ff9b::/96]:*", true, map[uint16]bool{80: true}},
	}
	for _, tt := range tests {
		p, err := Parse(tt.policy)
		if err != nil {
			t.Fatal(err)
		}
		if p.IsExit() != tt.exit {
			t.Errorf("%q.IsExit() = %v, want %v", tt.policy, p.IsExit(), tt.exit)
		}
		if got := oracleIsExit(p, candidates(p)); got != tt.exit {
			t.Errorf("%q: oracle IsExit = %v, want %v", tt.policy, got, tt.exit)
		}
		for port, want := range tt.ports {
			if got := p.AllowsPort(port); got != want {
				t.Errorf("%q.AllowsPort(%d) = %v, want %v", tt.policy, port, got, want)
			}
		}
	}
}

// lastAddr returns the last address of a prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr()
	b := a.As16()
	off := 0
	if a.Is4() {
		off = 96
	}
	for i := off + p.Bits(); i < 128; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	l := netip.AddrFrom16(b)
	if a.Is4() {
		l = l.Unmap()
	}
	return l
}

// candidates returns addresses such that, for any set difference of
// prefixes drawn from the policy, the private ranges and ::ffff:0:0/96, a
// non-empty difference contains one of them: the ends of every prefix and
// their neighbours.
func candidates(p *Policy) []netip.Addr {
	pfxs := append([]netip.Prefix{mappedV6}, privatePrefixes...)
	pfxs = append(pfxs, anyPrefixes...)
	for _, r := range p.rules {
		pfxs = append(pfxs, r.prefixes(p.privateSet())...)
	}
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	add := func(a netip.Addr) {
		if a.IsValid() && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	for _, pf := range pfxs {
		first, last := pf.Masked().Addr(), lastAddr(pf)
		add(first)
		add(last)
		add(first.Prev())
		add(last.Next())
	}
	return out
}

// portCandidates returns one port per interval on which the matching rules
// are constant.
func portCandidates(p *Policy) []uint16 {
	out := []uint16{1, 65535}
	for _, r := range p.rules {
		out = append(out, r.lo, r.hi)
		if r.lo > 1 {
			out = append(out, r.lo-1)
		}
		if r.hi < 65535 {
			out = append(out, r.hi+1)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// oracleAllowsPort answers AllowsPort by trying every address of cands,
// which must be candidates(p).
func oracleAllowsPort(p *Policy, cands []netip.Addr, port uint16) bool {
	for _, a := range cands {
		if !IsPrivate(a) && p.Allows(a, port) {
			return true
		}
	}
	return false
}

// oracleIsExit answers IsExit by trying every address of cands, which
// must be candidates(p), on every port of portCandidates(p).
func oracleIsExit(p *Policy, cands []netip.Addr) bool {
	for _, port := range portCandidates(p) {
		for _, a := range cands {
			if p.Allows(a, port) {
				return true
			}
		}
	}
	return false
}

// randomPolicy builds a policy from a small alphabet of overlapping
// patterns and ports so that rules interact.
func randomPolicy(r *rand.Rand) string {
	pats := []string{"*", "private", "10.0.0.0/8", "8.8.8.8", "0.0.0.0/1", "128.0.0.0/1", "0.0.0.0/0",
		"[::/0]", "[::/1]", "[8000::/1]", "[::ffff:0:0/96]", "[64:ff9b::/96]", "[2002::/16]", "[fc00::/7]",
		"127.0.0.0/8", "100.64.0.0/10", "[2001:db8::/32]", "224.0.0.0/3", "[::1]", "[::]"}
	portsets := []string{"*", "80", "443", "1-1024", "1024-65535", "80-443", "1", "65535"}
	n := 1 + r.IntN(6)
	rules := make([]string, n)
	for i := range rules {
		act := "reject"
		if r.IntN(2) == 0 {
			act = "accept"
		}
		rules[i] = fmt.Sprintf("%s %s:%s", act, pats[r.IntN(len(pats))], portsets[r.IntN(len(portsets))])
	}
	return strings.Join(rules, ",")
}

// ownSamples are own addresses for WithOwnAddrs in the oracle tests:
// public, private, and next to the ranges of randomPolicy.
var ownSamples = []netip.Addr{
	netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("8.8.8.9"), netip.MustParseAddr("10.0.0.1"),
	netip.MustParseAddr("127.255.255.255"), netip.MustParseAddr("128.0.0.0"), netip.MustParseAddr("2001:4860::1"),
	netip.MustParseAddr("8000::"), netip.MustParseAddr("64:ff9b::808:808"),
}

func TestAnalysisMatchesOracle(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		s := randomPolicy(r)
		p, err := Parse(s)
		if err != nil {
			t.Fatalf("Parse(%q): %v", s, err)
		}
		if i%2 == 1 {
			p = p.WithOwnAddrs(ownSamples[r.IntN(len(ownSamples)):]...)
		}
		cands := candidates(p)
		if got, want := p.IsExit(), oracleIsExit(p, cands); got != want {
			t.Fatalf("%q.IsExit() = %v, oracle %v", s, got, want)
		}
		for _, port := range []uint16{1, 80, 443, 1024, 8080, 65535} {
			if got, want := p.AllowsPort(port), oracleAllowsPort(p, cands, port); got != want {
				t.Fatalf("%q.AllowsPort(%d) = %v, oracle %v", s, port, got, want)
			}
		}
	}
}

// TestAnalysisCost bounds the work of the worst policies a descriptor can
// carry: many small rejects that together cover what a later accept names.
func TestAnalysisCost(t *testing.T) {
	worst := []func(i int) string{
		func(i int) string { return fmt.Sprintf("reject 10.%d.0.0/16:%d-%d", i, i+1, 65535-i) },
		func(i int) string { return fmt.Sprintf("reject [2001:db8:%x::/48]:%d-%d", i, i+1, 65535-i) },
		func(i int) string {
			if i%2 == 1 {
				return fmt.Sprintf("accept private:%d", i)
			}
			return fmt.Sprintf("reject 10.%d.0.0/16:*", i/2)
		},
		func(i int) string { return fmt.Sprintf("reject 10.%d.%d.0/24:%d", i%256, i/256, i+1) },
		func(i int) string {
			if i == 0 {
				return "reject private:*"
			}
			return "accept private:*"
		},
	}
	for n, rule := range worst {
		var rules []string
		for i := 0; len(rules) < MaxRules-2; i++ {
			rules = append(rules, rule(i))
		}
		rules = append(rules, "accept 10.0.0.0/8:*", "accept [2001:db8::/32]:*")
		s := strings.Join(rules, ",")
		start := time.Now()
		p, err := Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		for port := range uint16(256) {
			p.AllowsPort(port + 1)
		}
		d := time.Since(start)
		t.Logf("policy %d (%d bytes): Parse + 256 AllowsPort in %v", n, len(s), d)
		if d > 5*time.Second {
			t.Fatalf("analysis of policy %d took %v", n, d)
		}
	}
}
