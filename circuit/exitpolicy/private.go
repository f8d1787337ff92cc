package exitpolicy

import (
	"net/netip"
	"slices"
)

// The "private" set is every range that the IANA special-purpose address
// registries (RFC 6890) mark as not globally reachable, plus multicast,
// deprecated forms that a host may still deliver locally, and IPv6
// addresses that embed a private IPv4 address. spec/exit-policy.md §3 is
// normative.

// privateV4 are the IPv4 ranges the "private" pattern names.
var privateV4 = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),          // "this" network (RFC 791)
	netip.MustParsePrefix("10.0.0.0/8"),         // RFC 1918
	netip.MustParsePrefix("100.64.0.0/10"),      // carrier-grade NAT (RFC 6598)
	netip.MustParsePrefix("127.0.0.0/8"),        // loopback
	netip.MustParsePrefix("169.254.0.0/16"),     // link-local
	netip.MustParsePrefix("172.16.0.0/12"),      // RFC 1918
	netip.MustParsePrefix("192.0.0.0/24"),       // IETF protocol assignments (RFC 6890): DS-Lite B4, NAT64 discovery, PCP/TURN anycast
	netip.MustParsePrefix("192.0.2.0/24"),       // documentation, TEST-NET-1 (RFC 5737)
	netip.MustParsePrefix("192.168.0.0/16"),     // RFC 1918
	netip.MustParsePrefix("198.18.0.0/15"),      // benchmarking (RFC 2544)
	netip.MustParsePrefix("198.51.100.0/24"),    // documentation, TEST-NET-2 (RFC 5737)
	netip.MustParsePrefix("203.0.113.0/24"),     // documentation, TEST-NET-3 (RFC 5737)
	netip.MustParsePrefix("224.0.0.0/4"),        // multicast
	netip.MustParsePrefix("240.0.0.0/4"),        // reserved
	netip.MustParsePrefix("255.255.255.255/32"), // broadcast (inside 240/4; listed for clarity)
}

// privateV6Native are the IPv6 ranges the "private" pattern names directly.
var privateV6Native = []netip.Prefix{
	netip.MustParsePrefix("::/96"),          // IPv4-compatible, deprecated (RFC 4291 §2.5.5.1); holds :: and ::1
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use IPv4/IPv6 translation (RFC 8215)
	netip.MustParsePrefix("100::/64"),       // discard-only (RFC 6666)
	netip.MustParsePrefix("100:0:0:1::/64"), // dummy prefix (RFC 9780)
	netip.MustParsePrefix("2001::/23"),      // IETF protocol assignments (RFC 2928), Teredo 2001::/32 included
	netip.MustParsePrefix("2001:db8::/32"),  // documentation (RFC 3849)
	netip.MustParsePrefix("3fff::/20"),      // documentation (RFC 9637)
	netip.MustParsePrefix("5f00::/16"),      // segment routing SIDs (RFC 9602)
	netip.MustParsePrefix("fc00::/7"),       // unique local
	netip.MustParsePrefix("fe80::/10"),      // link-local
	netip.MustParsePrefix("fec0::/10"),      // site-local, deprecated (RFC 3879)
	netip.MustParsePrefix("ff00::/8"),       // multicast
}

// Prefixes that embed an IPv4 address; an embedded private IPv4 address is
// private too, because a NAT64 or 6to4 gateway would deliver to it.
var (
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96") // RFC 6052 well-known prefix, IPv4 in bytes 12..15
	sixToFour   = netip.MustParsePrefix("2002::/16")    // RFC 3056, IPv4 in bytes 2..5
	// mappedV6 (::ffff:0:0/96) addresses are evaluated as IPv4, so IPv6
	// patterns never match them.
	mappedV6 = netip.MustParsePrefix("::ffff:0:0/96")
)

// privatePrefixes is every prefix, in both families, that IsPrivate covers
// (IPv4-mapped addresses excluded: they are evaluated as IPv4), the IPv4
// ones first (see inSet).
var privatePrefixes = byFamily(withEmbedded(append(append([]netip.Prefix{}, privateV4...), privateV6Native...)))

// withEmbedded returns pfxs followed by the NAT64 and 6to4 forms of each
// IPv4 prefix in it.
func withEmbedded(pfxs []netip.Prefix) []netip.Prefix {
	out := append([]netip.Prefix(nil), pfxs...)
	for _, p := range pfxs {
		if !p.Addr().Is4() {
			continue
		}
		v4 := p.Addr().As4()
		var a [16]byte
		copy(a[:], nat64Prefix.Addr().AsSlice())
		copy(a[12:], v4[:])
		out = append(out, netip.PrefixFrom(netip.AddrFrom16(a), 96+p.Bits()))
		a = [16]byte{0x20, 0x02}
		copy(a[2:], v4[:])
		out = append(out, netip.PrefixFrom(netip.AddrFrom16(a), 16+p.Bits()))
	}
	return out
}

// IsPrivate reports whether ip is in a range the "private" pattern names:
// see spec/exit-policy.md. IPv4-mapped IPv6 addresses are unmapped first,
// and IPv4 addresses embedded in NAT64 (64:ff9b::/96) and 6to4 (2002::/16)
// addresses count as well. An invalid address counts as private. An exit's
// own addresses (Policy.WithOwnAddrs) are not in this set.
func IsPrivate(ip netip.Addr) bool {
	if !ip.IsValid() {
		return true
	}
	return inSet(ip.Unmap().WithZone(""), privatePrefixes)
}

// inSet reports whether ip (unmapped, without zone) is in one of set,
// whose IPv4 prefixes all come before its IPv6 ones (byFamily), so that
// only the prefixes of ip's family are tried.
func inSet(ip netip.Addr, set []netip.Prefix) bool {
	if ip.Is4() {
		for _, p := range set {
			if !p.Addr().Is4() {
				return false
			}
			if p.Contains(ip) {
				return true
			}
		}
		return false
	}
	for i := len(set) - 1; i >= 0 && !set[i].Addr().Is4(); i-- {
		if set[i].Contains(ip) {
			return true
		}
	}
	return false
}

// byFamily sorts pfxs, IPv4 prefixes first, keeping the order within each
// family, and returns it.
func byFamily(pfxs []netip.Prefix) []netip.Prefix {
	slices.SortStableFunc(pfxs, func(a, b netip.Prefix) int {
		switch {
		case a.Addr().Is4() == b.Addr().Is4():
			return 0
		case a.Addr().Is4():
			return -1
		}
		return 1
	})
	return pfxs
}
