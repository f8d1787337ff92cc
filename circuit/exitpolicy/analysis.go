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
	p.summarize()
	_, found := slices.BinarySearchFunc(p.publicPorts, port, func(r portRange, port uint16) int {
		switch {
		case r.hi < port:
			return -1
		case r.lo > port:
			return 1
		}
		return 0
	})
	return found
}

// IsExit reports whether p accepts at least one destination (address and
// port), private ones included.
func (p *Policy) IsExit() bool {
	if p == nil {
		return false
	}
	p.summarize()
	return p.isExit
}

// portRange is an inclusive range of ports.
type portRange struct{ lo, hi uint16 }

// summarize computes, once, the ports on which some public address is
// accepted and whether anything is accepted at all. The set of rules whose
// ports match is constant between consecutive rule port boundaries, so one
// port per such interval decides for the whole interval.
func (p *Policy) summarize() {
	p.once.Do(func() {
		bounds := []int{1, 65536}
		for _, r := range p.rules {
			bounds = append(bounds, int(r.lo), int(r.hi)+1)
		}
		slices.Sort(bounds)
		bounds = slices.Compact(bounds)
		for i := 0; i+1 < len(bounds); i++ {
			lo, hi := uint16(bounds[i]), uint16(bounds[i+1]-1)
			switch {
			case p.acceptsAt(lo, true):
				p.isExit = true
				if n := len(p.publicPorts); n > 0 && p.publicPorts[n-1].hi == lo-1 {
					p.publicPorts[n-1].hi = hi
				} else {
					p.publicPorts = append(p.publicPorts, portRange{lo, hi})
				}
			case !p.isExit && p.acceptsAt(lo, false):
				p.isExit = true
			}
		}
	})
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
		for _, pfx := range r.prefixes(p.privateSet()) {
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
