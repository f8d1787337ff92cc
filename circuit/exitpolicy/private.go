package exitpolicy

import "net/netip"

// privateV4 are the IPv4 ranges the "private" pattern names.
var privateV4 = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),          // "this" network
	netip.MustParsePrefix("10.0.0.0/8"),         // RFC 1918
	netip.MustParsePrefix("100.64.0.0/10"),      // carrier-grade NAT (RFC 6598)
	netip.MustParsePrefix("127.0.0.0/8"),        // loopback
	netip.MustParsePrefix("169.254.0.0/16"),     // link-local
	netip.MustParsePrefix("172.16.0.0/12"),      // RFC 1918
	netip.MustParsePrefix("192.168.0.0/16"),     // RFC 1918
	netip.MustParsePrefix("224.0.0.0/4"),        // multicast
	netip.MustParsePrefix("240.0.0.0/4"),        // reserved
	netip.MustParsePrefix("255.255.255.255/32"), // broadcast (inside 240/4; listed for clarity)
}

// privateV6Native are the IPv6 ranges the "private" pattern names directly.
var privateV6Native = []netip.Prefix{
	netip.MustParsePrefix("::/128"),    // unspecified
	netip.MustParsePrefix("::1/128"),   // loopback
	netip.MustParsePrefix("fc00::/7"),  // unique local
	netip.MustParsePrefix("fe80::/10"), // link-local
	netip.MustParsePrefix("ff00::/8"),  // multicast
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
// (IPv4-mapped addresses excluded: they are evaluated as IPv4).
var privatePrefixes = buildPrivate()

func buildPrivate() []netip.Prefix {
	out := append(append([]netip.Prefix{}, privateV4...), privateV6Native...)
	for _, p := range privateV4 {
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
// addresses count as well. An invalid address counts as private.
func IsPrivate(ip netip.Addr) bool {
	if !ip.IsValid() {
		return true
	}
	ip = ip.Unmap().WithZone("")
	for _, p := range privatePrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
