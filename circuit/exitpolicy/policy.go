package exitpolicy

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// MaxRules bounds the number of rules in a policy. Descriptors bound the
// policy's length more tightly (1024 bytes).
const MaxRules = 256

// ErrSyntax is wrapped by every Parse error.
var ErrSyntax = errors.New("exitpolicy: syntax error")

// Policy is a parsed exit policy: an ordered list of rules. The zero value
// and a nil *Policy reject everything. A Policy is immutable and safe for
// concurrent use.
type Policy struct {
	rules []rule
	// private is the address set of the "private" pattern, IPv4 prefixes
	// first (inSet): privatePrefixes when nil, and with the exit's own
	// addresses after WithOwnAddrs.
	private []netip.Prefix

	// once guards the following, computed on first use by summarize.
	once        sync.Once
	isExit      bool        // some rule accepts some destination
	publicPorts []portRange // sorted, disjoint, non-adjacent ports that reach a public address
}

type patternKind uint8

const (
	patAny     patternKind = iota // "*": every address
	patPrivate                    // "private": IsPrivate
	patPrefix                     // an IPv4 or IPv6 prefix
)

// rule is one "accept|reject PATTERN:PORTS" entry.
type rule struct {
	accept bool
	kind   patternKind
	prefix netip.Prefix // patPrefix only: masked, no zone; IPv4 for IPv4-mapped input
	lo, hi uint16       // inclusive port range within 1..65535
}

var (
	anyPrefixes = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}

	defaultPolicy   = mustParse("reject private:*,accept *:*")
	acceptAllPolicy = mustParse("accept *:*")
	rejectAllPolicy = mustParse("reject *:*")
)

func mustParse(s string) *Policy {
	p, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return p
}

// Default returns the default exit policy, "reject private:*,accept *:*".
func Default() *Policy { return defaultPolicy }

// AcceptAll returns "accept *:*", which also allows private and loopback
// destinations (local test networks use it).
func AcceptAll() *Policy { return acceptAllPolicy }

// RejectAll returns "reject *:*": the policy of a relay that is not an exit.
func RejectAll() *Policy { return rejectAllPolicy }

// Parse parses a policy in the syntax of spec/exit-policy.md. White space
// around rules is ignored, keywords are case-insensitive, prefixes with
// host bits set are masked, and IPv4-mapped IPv6 patterns of at least /96
// become IPv4 patterns; String shows the result in canonical form.
func Parse(s string) (*Policy, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf(`%w: empty policy (a non-exit uses "reject *:*")`, ErrSyntax)
	}
	parts := strings.Split(s, ",")
	if len(parts) > MaxRules {
		return nil, fmt.Errorf("%w: %d rules, at most %d allowed", ErrSyntax, len(parts), MaxRules)
	}
	p := &Policy{rules: make([]rule, 0, len(parts))}
	for i, part := range parts {
		r, err := parseRule(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("%w: rule %d %q: %s", ErrSyntax, i+1, strings.TrimSpace(part), err)
		}
		p.rules = append(p.rules, r)
	}
	return p, nil
}

func parseRule(s string) (rule, error) {
	var r rule
	if s == "" {
		return r, errors.New("empty rule")
	}
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return r, errors.New(`want "accept|reject PATTERN[:PORTS]"`)
	}
	action, target := s[:i], strings.TrimLeft(s[i:], " \t")
	switch {
	case strings.EqualFold(action, "accept"):
		r.accept = true
	case strings.EqualFold(action, "reject"):
	default:
		return r, fmt.Errorf(`unknown action %q, want "accept" or "reject"`, action)
	}
	if strings.ContainsAny(target, " \t") {
		return r, errors.New("white space inside the pattern")
	}
	var pat, ports string
	hasPorts := false
	if strings.HasPrefix(target, "[") {
		j := strings.IndexByte(target, ']')
		if j < 0 {
			return r, errors.New(`missing "]"`)
		}
		pat = target[1:j]
		switch rest := target[j+1:]; {
		case rest == "":
		case rest[0] == ':':
			ports, hasPorts = rest[1:], true
		default:
			return r, fmt.Errorf(`unexpected %q after "]"`, rest)
		}
		pfx, err := parseIPv6Pattern(pat)
		if err != nil {
			return r, err
		}
		r.kind, r.prefix = patPrefix, pfx
	} else {
		if strings.Count(target, ":") > 1 {
			return r, errors.New("IPv6 addresses go in brackets, like [2001:db8::/32]:443")
		}
		pat = target
		if j := strings.IndexByte(target, ':'); j >= 0 {
			pat, ports, hasPorts = target[:j], target[j+1:], true
		}
		switch {
		case pat == "*":
			r.kind = patAny
		case strings.EqualFold(pat, "private"):
			r.kind = patPrivate
		default:
			pfx, err := parseIPv4Pattern(pat)
			if err != nil {
				return r, err
			}
			r.kind, r.prefix = patPrefix, pfx
		}
	}
	r.lo, r.hi = 1, 65535
	if hasPorts {
		var err error
		if r.lo, r.hi, err = parsePorts(ports); err != nil {
			return r, err
		}
	}
	return r, nil
}

func parseIPv4Pattern(s string) (netip.Prefix, error) {
	pfx, err := parsePrefix(s)
	if err != nil {
		return pfx, fmt.Errorf(`pattern %q is not "*", "private", an IPv4 address or CIDR, or a bracketed IPv6 one`, s)
	}
	if !pfx.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("pattern %q: IPv6 addresses go in brackets", s)
	}
	return pfx.Masked(), nil
}

func parseIPv6Pattern(s string) (netip.Prefix, error) {
	pfx, err := parsePrefix(s)
	if err != nil {
		return pfx, fmt.Errorf("[%s] is not an IPv6 address or CIDR", s)
	}
	a := pfx.Addr()
	if !a.Is6() {
		return netip.Prefix{}, fmt.Errorf("[%s]: IPv4 addresses go without brackets", s)
	}
	if a.Is4In6() && pfx.Bits() >= 96 {
		// Destinations are unmapped before matching, so match as IPv4.
		return netip.PrefixFrom(a.Unmap(), pfx.Bits()-96).Masked(), nil
	}
	return pfx.Masked(), nil
}

// parsePrefix parses "ADDR" (a full-length prefix) or "ADDR/BITS". Zones
// are refused.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return pfx, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a.Zone() != "" {
		return netip.Prefix{}, errors.New("zones are not allowed")
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func parsePorts(s string) (lo, hi uint16, err error) {
	if s == "*" {
		return 1, 65535, nil
	}
	loS, hiS, isRange := strings.Cut(s, "-")
	if lo, err = parsePort(loS); err != nil {
		return 0, 0, err
	}
	hi = lo
	if isRange {
		if hi, err = parsePort(hiS); err != nil {
			return 0, 0, err
		}
		if lo > hi {
			return 0, 0, fmt.Errorf("port range %d-%d is backwards", lo, hi)
		}
	}
	return lo, hi, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf(`port %q is not "*" or a number in 1..65535`, s)
	}
	return uint16(n), nil
}

// String returns the canonical form: rules joined by "," with no spaces,
// lowercase keywords, masked prefixes (a single address without "/32" or
// "/128"), and every rule with its ports ("*", "N" or "N-M"). A nil policy
// prints as "reject *:*".
func (p *Policy) String() string {
	if p == nil || len(p.rules) == 0 {
		return "reject *:*"
	}
	var b strings.Builder
	for i, r := range p.rules {
		if i > 0 {
			b.WriteByte(',')
		}
		r.appendTo(&b)
	}
	return b.String()
}

func (r rule) appendTo(b *strings.Builder) {
	if r.accept {
		b.WriteString("accept ")
	} else {
		b.WriteString("reject ")
	}
	switch r.kind {
	case patAny:
		b.WriteByte('*')
	case patPrivate:
		b.WriteString("private")
	case patPrefix:
		s := r.prefix.String()
		if r.prefix.IsSingleIP() {
			s = r.prefix.Addr().String()
		}
		if r.prefix.Addr().Is6() {
			s = "[" + s + "]"
		}
		b.WriteString(s)
	}
	b.WriteByte(':')
	switch {
	case r.lo == 1 && r.hi == 65535:
		b.WriteByte('*')
	case r.lo == r.hi:
		b.WriteString(strconv.Itoa(int(r.lo)))
	default:
		b.WriteString(strconv.Itoa(int(r.lo)))
		b.WriteByte('-')
		b.WriteString(strconv.Itoa(int(r.hi)))
	}
}

// WithOwnAddrs returns a policy with the rules of p whose "private"
// pattern also covers addrs, the exit's own addresses, as it covers
// loopback: a connection to an exit's own address reaches the exit's host
// (its other services, its relay port) just as loopback does. So with the
// default policy an exit refuses them, like Tor's ExitPolicyRejectPrivate
// refuses the relay's own addresses; a policy that accepts private
// destinations ("accept *:*" on a local test network) accepts them too.
//
// IPv4-mapped addresses count as IPv4 and zones are dropped; an IPv4
// address is covered in its NAT64 and 6to4 forms as well. Invalid
// addresses, and those the private set covers already, are skipped. The
// own addresses are local knowledge of the
// exit: String, and so the descriptor, does not show them. A nil p stays
// nil (it rejects everything). addrs adds to any own addresses p has.
func (p *Policy) WithOwnAddrs(addrs ...netip.Addr) *Policy {
	if p == nil {
		return nil
	}
	var own []netip.Prefix
	for _, a := range addrs {
		if !a.IsValid() {
			continue
		}
		a = a.Unmap().WithZone("")
		pfx := netip.PrefixFrom(a, a.BitLen())
		if !slices.Contains(own, pfx) && !inSet(a, p.privateSet()) {
			own = append(own, pfx)
		}
	}
	return &Policy{rules: p.rules, private: byFamily(append(slices.Clone(p.privateSet()), withEmbedded(own)...))}
}

// privateSet returns the address set of p's "private" pattern.
func (p *Policy) privateSet() []netip.Prefix {
	if p.private == nil {
		return privatePrefixes
	}
	return p.private
}

// Equal reports whether p and q have the same rules (so the same String)
// and the same own addresses (WithOwnAddrs), in the same order.
func (p *Policy) Equal(q *Policy) bool {
	if p.String() != q.String() {
		return false
	}
	var ps, qs []netip.Prefix
	if p != nil {
		ps = p.privateSet()
	}
	if q != nil {
		qs = q.privateSet()
	}
	return p == nil || q == nil || slices.Equal(ps, qs)
}

// Allows reports whether p lets an exit connect to ip:port. The first rule
// whose pattern and ports match decides; if none does, the answer is no.
// IPv4-mapped addresses are evaluated as IPv4, zones are ignored, and an
// invalid address or port 0 is never allowed.
func (p *Policy) Allows(ip netip.Addr, port uint16) bool {
	if p == nil || !ip.IsValid() || port == 0 {
		return false
	}
	ip = ip.Unmap().WithZone("")
	for _, r := range p.rules {
		if port >= r.lo && port <= r.hi && r.matches(ip, p.privateSet()) {
			return r.accept
		}
	}
	return false
}

// matches reports whether ip (unmapped, without zone) is in the rule's
// pattern, where private is the set of the "private" pattern.
func (r rule) matches(ip netip.Addr, private []netip.Prefix) bool {
	switch r.kind {
	case patAny:
		return true
	case patPrivate:
		return inSet(ip, private)
	default:
		return r.prefix.Contains(ip)
	}
}

// prefixes returns the address set of the rule's pattern as prefixes,
// where private is the set of the "private" pattern.
func (r rule) prefixes(private []netip.Prefix) []netip.Prefix {
	switch r.kind {
	case patAny:
		return anyPrefixes
	case patPrivate:
		return private
	default:
		return []netip.Prefix{r.prefix}
	}
}
