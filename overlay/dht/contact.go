package dht

import (
	"math/bits"
	"net"
	"net/netip"
	"strings"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// Contact names a DHT node. Addr ("scheme://ip:port") serves only the
// subnet-diversity rules; the Transport resolves ID to a real link.
type Contact struct {
	ID   keys.NodeID
	Addr string
}

// distance returns a XOR b.
func distance(a, b [KeySize]byte) (d [KeySize]byte) {
	for i := range d {
		d[i] = a[i] ^ b[i]
	}
	return d
}

// closer reports whether a is strictly closer to target than b.
func closer(target, a, b [KeySize]byte) bool {
	for i := range target {
		x, y := a[i]^target[i], b[i]^target[i]
		if x != y {
			return x < y
		}
	}
	return false
}

// commonPrefix returns the number of leading bits a and b share (256 when
// equal).
func commonPrefix(a, b [KeySize]byte) int {
	for i := range a {
		if x := a[i] ^ b[i]; x != 0 {
			return i*8 + bits.LeadingZeros8(x)
		}
	}
	return KeySize * 8
}

// subnet is the group of an address for a diversity rule: its IPv4 prefix
// of v4 bits or IPv6 prefix of v6 bits. A host name or a malformed address
// forms a group of its own host string, and the empty address the empty
// group.
type subnet struct {
	p    netip.Prefix
	host string
}

func subnetOf(addr string, v4, v6 int) subnet {
	if _, hp, ok := strings.Cut(addr, "://"); ok {
		addr = hp
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return subnet{host: addr}
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return subnet{host: host}
	}
	ip = ip.Unmap()
	b := v4
	if !ip.Is4() {
		b = v6
	}
	p, _ := ip.Prefix(b)
	return subnet{p: p}
}

// Subnet prefix lengths of the diversity rules (spec/dht.md §5).
const (
	bucketV4Bits  = 24 // routing table: per /24 ...
	bucketV6Bits  = 48 // ... or /48 in each bucket
	replicaV4Bits = 16 // replica and lookup sets: per /16 ...
	replicaV6Bits = 32 // ... or /32
)
