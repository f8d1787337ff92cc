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
// the link public key (103 characters), and HOST:PORT a TCP address; or
// "ID@SCHEME://HOST:PORT" for any address scheme. The client runs the Noise
// handshake against Link at Addr and then checks the relay's descriptor
// against Identity.
type Bootstrap struct {
	Identity keys.IdentityPublicKey
	Link     keys.LinkPublicKey
	Addr     string // "scheme://host:port", as in Descriptor.Addrs
}

// String returns "ID@HOST:PORT" for a tcp address and
// "ID@SCHEME://HOST:PORT" for any other.
func (b Bootstrap) String() string {
	var raw [64]byte
	copy(raw[:32], b.Identity[:])
	copy(raw[32:], b.Link[:])
	addr := b.Addr
	if hostport, ok := strings.CutPrefix(addr, JoinAddr(SchemeTCP, "")); ok {
		addr = hostport
	}
	return strings.ToLower(bootstrapEncoding.EncodeToString(raw[:])) + "@" + addr
}

// NodeID returns the NodeID of the bootstrap relay.
func (b Bootstrap) NodeID() keys.NodeID { return b.Identity.NodeID() }

// ParseBootstrap parses "ID@HOST:PORT" (a tcp address) or
// "ID@SCHEME://HOST:PORT". The ID may be in either letter case; the address
// must be a valid link address (spec/descriptor.md §2) and is returned with
// its scheme, so "ID@1.2.3.4:80" and "ID@tcp://1.2.3.4:80" give the same
// Bootstrap.
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
	addr, err = normalizeAddr(addr)
	if err != nil {
		return b, fmt.Errorf("descriptor: bootstrap: %w", err)
	}
	copy(b.Identity[:], raw[:32])
	copy(b.Link[:], raw[32:])
	b.Addr = addr
	return b, nil
}
