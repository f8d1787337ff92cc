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
//	| "DMK" (3) | version (1) | network ID (8) | suite (1) | flags (1) |
//
// Its bytes are part of the Noise prologue, so a changed suite or flag
// makes the first handshake message fail.
type preamble struct {
	version byte
	netID   [NetworkIDLen]byte
	suite   Suite
	flags   byte
}

// append appends the wire form of p to b.
func (p preamble) append(b []byte) []byte {
	b = append(b, preambleMagic...)
	b = append(b, p.version)
	b = append(b, p.netID[:]...)
	return append(b, byte(p.suite), p.flags)
}

// bytes returns the wire form of p.
func (p preamble) bytes() [PreambleLen]byte {
	var b [PreambleLen]byte
	p.append(b[:0])
	return b
}

// checkMagic checks the first 4 bytes of a preamble: a wrong magic is an
// ErrProtocol error (the peer does not speak darkmatter at all, and gets no
// answer); an unknown version gets RejectVersion. The rest of the preamble
// is read only for a known version, whose length it fixes.
func checkMagic(b []byte) (byte, error) {
	if len(b) < 4 {
		return 0, protoErr("preamble is %d bytes, want %d", len(b), PreambleLen)
	}
	if string(b[:3]) != preambleMagic {
		return 0, protoErr("bad preamble magic %q (not a darkmatter link)", b[:3])
	}
	if b[3] != PreambleVersion {
		return RejectVersion, fmt.Errorf("%w: peer sent preamble version %d, we speak %d", ErrVersion, b[3], PreambleVersion)
	}
	return 0, nil
}

// parsePreamble decodes the PreambleLen bytes of b. A wrong magic is an
// ErrProtocol error; the version, suite and flags are returned as they
// are, for check.
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
	p.suite = Suite(b[4+NetworkIDLen])
	p.flags = b[5+NetworkIDLen]
	return p, nil
}

// check returns the reject reason and error for a preamble that a
// responder on network netID with (hwAES) or without hardware AES must
// refuse, or 0 and nil. The order is: version, network, suite and flags,
// then the suite policy of spec/links.md §3.1.
func (p preamble) check(netID [NetworkIDLen]byte, hwAES bool) (byte, error) {
	if p.version != PreambleVersion {
		return RejectVersion, fmt.Errorf("%w: peer sent preamble version %d, we speak %d", ErrVersion, p.version, PreambleVersion)
	}
	if p.netID != netID {
		return RejectNetwork, ErrNetworkMismatch
	}
	if !p.suite.known() {
		return RejectVersion, fmt.Errorf("%w: peer proposed unknown suite %d", ErrVersion, byte(p.suite))
	}
	if p.flags&^knownFlags != 0 {
		return RejectVersion, fmt.Errorf("%w: peer sent unknown preamble flags %#02x", ErrVersion, p.flags)
	}
	retry := p.flags&FlagSuiteRetry != 0
	switch {
	case retry && p.suite != SuiteChaChaPoly:
		return RejectVersion, fmt.Errorf("%w: retry flag with suite %v", ErrVersion, p.suite)
	case retry && hwAES:
		// We have hardware AES, so we never asked for ChaChaPoly: someone
		// forged our reject to talk the initiator down.
		return RejectHandshake, fmt.Errorf("%w: %w: a retry with ChaChaPoly, but we never reject AESGCM", ErrHandshake, ErrDowngrade)
	case p.suite == SuiteAESGCM && !hwAES:
		return RejectSuite, fmt.Errorf("%w: peer proposed AESGCM without hardware AES here; asked it to redial with ChaChaPoly", ErrSuiteRejected)
	}
	return 0, nil
}

// rejectErr is the error an initiator that proposed suite and flags reports for a
// reject frame with the given reason. peerPrefersAES is Config's.
func rejectErr(reason byte, suite Suite, flags byte, peerPrefersAES bool) error {
	switch reason {
	case RejectNetwork:
		return ErrNetworkMismatch
	case RejectHandshake:
		return fmt.Errorf("%w: rejected by the peer: wrong key?", ErrHandshake)
	case RejectVersion:
		return fmt.Errorf("%w: rejected by the peer (preamble version %d, suite %v, flags %#02x)", ErrVersion, PreambleVersion, suite, flags)
	case RejectSuite:
		switch {
		case suite != SuiteAESGCM:
			return fmt.Errorf("%w: the peer rejected ChaChaPoly, which every node speaks", ErrHandshake)
		case peerPrefersAES:
			return fmt.Errorf("%w: %w: a \"use ChaChaPoly\" reject from a peer that advertises hardware AES", ErrHandshake, ErrDowngrade)
		}
		return fmt.Errorf("%w: the peer has no hardware AES", ErrSuiteRejected)
	}
	return fmt.Errorf("%w: rejected by the peer with unknown reason %d", ErrHandshake, reason)
}
