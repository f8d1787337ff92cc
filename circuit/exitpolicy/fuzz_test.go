package exitpolicy

import (
	"net/netip"
	"testing"

	"github.com/darkmatter/darkmatter/internal/testvec"
)

// FuzzParse checks that Parse never panics, that String is canonical
// (Parse(String()) is equal and prints the same), and that AllowsPort and
// IsExit agree with Allows on the oracle's candidate addresses, for the
// policy as parsed and at an exit with own addresses (WithOwnAddrs).
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"reject private:*,accept *:*", "accept *:*", "reject *:*", "accept *",
		"accept 1.2.3.4/8:80-443,reject [2001:db8::/32]:*", "accept [::ffff:1.2.3.4/120]:1",
		"reject 0.0.0.0/1:*,reject 128.0.0.0/2:*,accept 0.0.0.0/0:*", " ACCEPT Private:22 ",
		"accept [64:ff9b::/96]:*", "accept *:0", "accept [fe80::1%eth0]", "accept ::1",
	} {
		f.Add(s)
	}
	var v policyVectors
	if err := testvec.Read(vectorsFile, &v); err == nil {
		for _, c := range v.Canonical {
			f.Add(c.Input)
		}
		for _, s := range v.Bad {
			f.Add(s)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		if err != nil {
			return
		}
		canon := p.String()
		q, err := Parse(canon)
		if err != nil {
			t.Fatalf("Parse(%q).String() = %q does not parse: %v", s, canon, err)
		}
		if !q.Equal(p) || q.String() != canon || q.IsExit() != p.IsExit() {
			t.Fatalf("Parse(%q) = %q, but the canonical form reparses as %q", s, canon, q)
		}
		if len(p.rules) > 16 {
			return // keep the oracle cheap
		}
		checkOracle(t, s, p, q)
		// The same, at an exit with own addresses.
		checkOracle(t, s, p.WithOwnAddrs(ownSamples...), q.WithOwnAddrs(ownSamples...))
	})
}

// checkOracle checks that p and q (the same policy, parsed from s and from
// its canonical form) agree on the oracle's candidate addresses, and that
// AllowsPort and IsExit agree with Allows there.
func checkOracle(t *testing.T, s string, p, q *Policy) {
	t.Helper()
	cands := candidates(p)
	for _, port := range portCandidates(p) {
		public := false
		for _, a := range cands {
			if p.Allows(a, port) != q.Allows(a, port) {
				t.Fatalf("%q and its canonical form disagree on %s:%d", s, a, port)
			}
			if p.Allows(a, port) {
				if !p.IsExit() {
					t.Fatalf("%q allows %s:%d but IsExit is false", s, a, port)
				}
				if !IsPrivate(a) {
					public = true
				}
			}
		}
		if p.AllowsPort(port) != public {
			t.Fatalf("%q.AllowsPort(%d) = %v, oracle %v", s, port, !public, public)
		}
	}
	if p.IsExit() != oracleIsExit(p, cands) {
		t.Fatalf("%q.IsExit() = %v, oracle disagrees", s, p.IsExit())
	}
	_ = p.Allows(netip.IPv6Unspecified(), 1)
}
