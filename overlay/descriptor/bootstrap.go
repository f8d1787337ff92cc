package descriptor

import (
	"encoding/base32"
	"fmt"
	"strings"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// BootstrapIDLength is the number of base32 characters of a bootstrap ID:
// 64 bytes (identity key || link key) unpadded.
const BootstrapIDLength = 103

var bootstrapEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// Bootstrap is what a client needs to reach a first relay: "ID@HOST:PORT",
// where ID is the lowercase unpadded base32 of the identity public key and
// the link public key (103 characters). The client runs the Noise handshake
// against Link at Addr and then checks the relay's descriptor against
// Identity.
type Bootstrap struct {
	Identity keys.IdentityPublicKey
	Link     keys.LinkPublicKey
	Addr     string // "host:port"
}

// String returns "ID@HOST:PORT".
func (b Bootstrap) String() string {
	var raw [64]byte
	copy(raw[:32], b.Identity[:])
	copy(raw[32:], b.Link[:])
	return strings.ToLower(bootstrapEncoding.EncodeToString(raw[:])) + "@" + b.Addr
}

// NodeID returns the NodeID of the bootstrap relay.
func (b Bootstrap) NodeID() keys.NodeID { return b.Identity.NodeID() }

// ParseBootstrap parses "ID@HOST:PORT". The ID may be in either letter case;
// the address must be a valid link address (see spec/descriptor.md).
func ParseBootstrap(s string) (Bootstrap, error) {
	var b Bootstrap
	id, addr, ok := strings.Cut(s, "@")
	if !ok {
		return b, fmt.Errorf("descriptor: bootstrap %q is not ID@HOST:PORT", s)
	}
	if len(id) != BootstrapIDLength {
		return b, fmt.Errorf("descriptor: bootstrap ID has %d characters, want %d", len(id), BootstrapIDLength)
	}
	upper := []byte(id)
	for i, c := range upper {
		if 'a' <= c && c <= 'z' {
			upper[i] = c - 'a' + 'A'
		}
	}
	var raw [64]byte
	n, err := bootstrapEncoding.Decode(raw[:], upper)
	// The last character carries 3 unused bits; they must be zero so that
	// every ID has one spelling.
	if err != nil || n != len(raw) || bootstrapEncoding.EncodeToString(raw[:]) != string(upper) {
		return b, fmt.Errorf("descriptor: bootstrap ID %q is not base32 of two 32-byte keys", id)
	}
	if err := checkAddr(addr); err != nil {
		return b, fmt.Errorf("descriptor: bootstrap: %w", err)
	}
	copy(b.Identity[:], raw[:32])
	copy(b.Link[:], raw[32:])
	b.Addr = addr
	return b, nil
}
