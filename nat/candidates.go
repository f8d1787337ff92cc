package nat

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"time"
)

// Candidate message constants (spec/nat.md §4).
const (
	// MaxCandidates is the most addresses one Candidates message carries.
	MaxCandidates = 8
	// NonceSize is the size of the session nonce.
	NonceSize = 16

	candidatesVersion = 1
	candidatesHeader  = 1 + NonceSize + 4 + 1 // version, nonce, RTT, count
	familyIPv4        = 4
	familyIPv6        = 6
)

// Candidates is what one side of a hole punch tells the other: the
// session nonce, the addresses it may be reached at (its local and mapped
// UDP addresses), and the round-trip time it measured on the signalling
// path (0 when it has none).
//
// Binary layout (big-endian):
//
//	1      version = 1
//	16     nonce
//	4      RTT in microseconds (saturating)
//	1      count n, 0..8
//	n ×    family (1: 4 or 6) ‖ IP (4 or 16) ‖ port (2, non-zero)
//
// Addresses are unicast-or-private IPs: not unspecified, no zone, IPv4 as
// family 4 (an IPv4-mapped IPv6 address is invalid). Nothing may follow.
type Candidates struct {
	Nonce [NonceSize]byte
	Addrs []netip.AddrPort
	RTT   time.Duration
}

// MarshalBinary encodes c; it fails for more than MaxCandidates addresses
// or an invalid one.
func (c Candidates) MarshalBinary() ([]byte, error) {
	return c.AppendBinary(nil)
}

// AppendBinary appends the encoding of c to b.
func (c Candidates) AppendBinary(b []byte) ([]byte, error) {
	if len(c.Addrs) > MaxCandidates {
		return nil, fmt.Errorf("%w: %d", ErrTooManyCandidates, len(c.Addrs))
	}
	b = append(b, candidatesVersion)
	b = append(b, c.Nonce[:]...)
	us := c.RTT.Microseconds()
	b = binary.BigEndian.AppendUint32(b, uint32(min(max(us, 0), math.MaxUint32)))
	b = append(b, byte(len(c.Addrs)))
	for _, a := range c.Addrs {
		ip := a.Addr().Unmap()
		if !validCandidate(ip, a.Port()) || a.Addr().Zone() != "" {
			return nil, fmt.Errorf("%w: invalid candidate address", ErrMalformed)
		}
		if ip.Is4() {
			b = append(b, familyIPv4)
		} else {
			b = append(b, familyIPv6)
		}
		b = append(b, ip.AsSlice()...)
		b = binary.BigEndian.AppendUint16(b, a.Port())
	}
	return b, nil
}

func validCandidate(ip netip.Addr, port uint16) bool {
	return ip.IsValid() && !ip.IsUnspecified() && !ip.IsMulticast() && port != 0
}

// UnmarshalBinary decodes b into c, strictly (spec/nat.md §4).
func (c *Candidates) UnmarshalBinary(b []byte) error {
	if len(b) < candidatesHeader || b[0] != candidatesVersion {
		return fmt.Errorf("%w: candidates header", ErrMalformed)
	}
	var out Candidates
	copy(out.Nonce[:], b[1:1+NonceSize])
	out.RTT = time.Duration(binary.BigEndian.Uint32(b[1+NonceSize:])) * time.Microsecond
	n := int(b[candidatesHeader-1])
	if n > MaxCandidates {
		return fmt.Errorf("%w: %d", ErrTooManyCandidates, n)
	}
	b = b[candidatesHeader:]
	for range n {
		if len(b) < 1 {
			return fmt.Errorf("%w: truncated candidate", ErrMalformed)
		}
		var size int
		switch b[0] {
		case familyIPv4:
			size = 4
		case familyIPv6:
			size = 16
		default:
			return fmt.Errorf("%w: address family %d", ErrMalformed, b[0])
		}
		if len(b) < 1+size+2 {
			return fmt.Errorf("%w: truncated candidate", ErrMalformed)
		}
		ip, _ := netip.AddrFromSlice(b[1 : 1+size])
		port := binary.BigEndian.Uint16(b[1+size:])
		if !validCandidate(ip, port) || ip.Is4In6() {
			return fmt.Errorf("%w: invalid candidate address", ErrMalformed)
		}
		out.Addrs = append(out.Addrs, netip.AddrPortFrom(ip, port))
		b = b[1+size+2:]
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(b))
	}
	*c = out
	return nil
}
