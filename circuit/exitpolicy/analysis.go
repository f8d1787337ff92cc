package exitpolicy

import (
	"net/netip"
	"slices"
)

// AllowsPort reports whether p lets an exit connect to some public
// (non-private) address on port. Clients use it to choose an exit before the
// destination name is resolved. The answer is exact: it is true if and only
// if Allows(ip, port) holds for some ip that IsPrivate does not cover.
func (p *Policy) AllowsPort(port uint16) bool {
	if p == nil || port == 0 {
		return false
	}
	return p.acceptsAt(port, true)
}

// IsExit reports whether p accepts at least one destination (address and
// port), private ones included.
func (p *Policy) IsExit() bool { return p != nil && p.isExit }

// computeIsExit checks every port interval on which the set of rules whose
// ports match is constant.
func (p *Policy) computeIsExit() bool {
	bounds := []int{1}
	for _, r := range p.rules {
		bounds = append(bounds, int(r.lo), int(r.hi)+1)
	}
	slices.Sort(bounds)
	bounds = slices.Compact(bounds)
	for _, b := range bounds {
		if b <= 65535 && p.acceptsAt(uint16(b), false) {
			return true
		}
	}
	return false
}

// acceptsAt reports whether some address (a public one if public is set)
// is accepted on port: whether some accept rule matching port has an
// address that no earlier rule matching port, nor the excluded sets, covers.
func (p *Policy) acceptsAt(port uint16, public bool) bool {
	// IPv4-mapped IPv6 addresses are matched as IPv4, so IPv6 patterns
	// never see them.
	exclude := []netip.Prefix{mappedV6}
	if public {
		exclude = append(exclude, privatePrefixes...)
	}
	for _, r := range p.rules {
		if port < r.lo || port > r.hi {
			continue
		}
		if r.kind == patAny && !r.accept {
			return false // every later rule is shadowed
		}
		// Only prefixes not yet covered add anything; skipping the others
		// keeps exclude small when rules repeat.
		for _, pfx := range r.prefixes() {
			if covered(pfx, exclude) {
				continue
			}
			if r.accept {
				return true
			}
			exclude = append(exclude, pfx)
		}
		if r.kind == patAny {
			return false // every later rule is shadowed
		}
	}
	return false
}

// covered reports whether prefix p lies inside the union of set. It only
// splits p where some member of set lies strictly inside it, so the work is
// about len(set) times the address length.
func covered(p netip.Prefix, set []netip.Prefix) bool {
	var inner []netip.Prefix
	for _, s := range set {
		if s.Addr().Is4() != p.Addr().Is4() {
			continue
		}
		if s.Bits() <= p.Bits() {
			if s.Contains(p.Addr()) {
				return true
			}
		} else if p.Contains(s.Addr()) {
			inner = append(inner, s)
		}
	}
	if len(inner) == 0 {
		return false
	}
	lo, hi := halves(p)
	return covered(lo, inner) && covered(hi, inner)
}

// halves splits a masked prefix that is not a single address into its two
// halves.
func halves(p netip.Prefix) (lo, hi netip.Prefix) {
	bits := p.Bits()
	lo = netip.PrefixFrom(p.Addr(), bits+1)
	a := p.Addr().As16()
	off := bits
	if p.Addr().Is4() {
		off += 96
	}
	a[off/8] |= 0x80 >> (off % 8)
	ha := netip.AddrFrom16(a)
	if p.Addr().Is4() {
		ha = ha.Unmap()
	}
	return lo, netip.PrefixFrom(ha, bits+1)
}
