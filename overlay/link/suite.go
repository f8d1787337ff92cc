package link

import (
	"strconv"

	"github.com/darkmatter/darkmatter/circuit/protover"
	"github.com/darkmatter/darkmatter/crypto/noiseconf"
	"github.com/flynn/noise"
	"golang.org/x/sys/cpu"
)

// Suite is a link's Noise cipher suite: the suite byte of the preamble
// (spec/links.md §2). Both use Curve25519 and BLAKE2s.
type Suite uint8

const (
	// SuiteChaChaPoly is Noise_IK_25519_ChaChaPoly_BLAKE2s. Every node
	// speaks it.
	SuiteChaChaPoly Suite = 0x01
	// SuiteAESGCM is Noise_IK_25519_AESGCM_BLAKE2s, proposed by an
	// initiator with hardware AES.
	SuiteAESGCM Suite = 0x02
)

// String returns the suite's Noise cipher name, "ChaChaPoly" or "AESGCM".
func (s Suite) String() string {
	switch s {
	case SuiteChaChaPoly:
		return "ChaChaPoly"
	case SuiteAESGCM:
		return "AESGCM"
	}
	return "Suite(" + strconv.Itoa(int(s)) + ")"
}

// ProtocolName returns the full Noise protocol name, for example
// "Noise_IK_25519_AESGCM_BLAKE2s".
func (s Suite) ProtocolName() string { return "Noise_IK_25519_" + s.String() + "_BLAKE2s" }

// known reports whether s is a suite of this version of the protocol.
func (s Suite) known() bool { return s == SuiteChaChaPoly || s == SuiteAESGCM }

// noiseSuite returns the crypto/noiseconf suite for s.
func (s Suite) noiseSuite() noise.CipherSuite {
	if s == SuiteAESGCM {
		return noiseconf.SuiteAESGCM
	}
	return noiseconf.Suite
}

// hasHardwareAES reports whether this machine runs AES-GCM in hardware:
// AES and carry-less multiplication instructions. It is a variable so that
// tests can pretend either way; Config.hardwareAES overrides it per side.
var hasHardwareAES = func() bool {
	return cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ || cpu.ARM64.HasAES && cpu.ARM64.HasPMULL
}

// HardwareAES reports whether this machine has hardware AES, so that links
// it dials propose AESGCM and it advertises LinkAES.
func HardwareAES() bool { return hasHardwareAES() }

// Protocols returns s plus the subprotocol versions this package speaks on
// this machine: Link=1, and LinkAES=1 when it has hardware AES. The link
// adds them to Config.Protocols in HELLO itself; a relay also signs them
// into its descriptor (Protocols(its set)), so that initiators know to set
// Config.PeerPrefersAES.
func Protocols(s protover.Set) protover.Set { return withOwnProtocols(s, hasHardwareAES()) }

func withOwnProtocols(s protover.Set, hwAES bool) protover.Set {
	s = s.With(protover.Link, LinkVersion).With(protover.LinkMove, MoveVersion)
	if hwAES {
		s = s.With(protover.LinkAES, 1)
	}
	return s
}
