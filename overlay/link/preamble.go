package link

import (
	"crypto/sha256"
	"fmt"
)

// NetworkID returns the 8-byte network ID carried in the preamble: the
// first 8 bytes of SHA-256("darkmatter network\x00" || network).
func NetworkID(network string) [NetworkIDLen]byte {
	h := sha256.New()
	h.Write([]byte(networkIDContext))
	h.Write([]byte(network))
	var id [NetworkIDLen]byte
	copy(id[:], h.Sum(nil))
	return id
}

// preamble is the first thing the initiator sends:
//
//	| "DMK" (3) | version (1) | network ID (8) |
type preamble struct {
	version byte
	netID   [NetworkIDLen]byte
}

// appendPreamble appends the wire form of p to b.
func (p preamble) append(b []byte) []byte {
	b = append(b, preambleMagic...)
	b = append(b, p.version)
	return append(b, p.netID[:]...)
}

// parsePreamble decodes the PreambleLen bytes of b. A wrong magic is an
// ErrProtocol error (the peer does not speak darkmatter at all); any
// version is returned as is, for the caller to check.
func parsePreamble(b []byte) (preamble, error) {
	var p preamble
	if len(b) != PreambleLen {
		return p, protoErr("preamble is %d bytes, want %d", len(b), PreambleLen)
	}
	if string(b[:3]) != preambleMagic {
		return p, protoErr("bad preamble magic %q (not a darkmatter link)", b[:3])
	}
	p.version = b[3]
	copy(p.netID[:], b[4:])
	return p, nil
}

// check returns the reject reason and error for a preamble that a
// responder on network netID must refuse, or 0 and nil.
func (p preamble) check(netID [NetworkIDLen]byte) (byte, error) {
	if p.version != Version {
		return RejectVersion, fmt.Errorf("%w: peer sent version %d, we speak %d", ErrVersion, p.version, Version)
	}
	if p.netID != netID {
		return RejectNetwork, ErrNetworkMismatch
	}
	return 0, nil
}

// rejectErr is the error an initiator reports for a reject frame with
// the given reason.
func rejectErr(reason byte) error {
	switch reason {
	case RejectNetwork:
		return ErrNetworkMismatch
	case RejectHandshake:
		return fmt.Errorf("%w: rejected by the peer: wrong key?", ErrHandshake)
	case RejectVersion:
		return fmt.Errorf("%w: rejected by the peer (we speak version %d)", ErrVersion, Version)
	}
	return fmt.Errorf("%w: rejected by the peer with unknown reason %d", ErrHandshake, reason)
}
