package keys

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// NodeIDSize is the size of a NodeID in bytes.
const NodeIDSize = sha256.Size

// NodeID names a node: SHA-256 of its identity public key.
type NodeID [NodeIDSize]byte

// String returns the NodeID as 64 lowercase hex characters.
func (id NodeID) String() string { return hex.EncodeToString(id[:]) }

// ParseNodeID parses 64 hex characters (either case) as a NodeID.
func ParseNodeID(s string) (NodeID, error) {
	var id NodeID
	if len(s) != 2*NodeIDSize {
		return id, fmt.Errorf("keys: node ID has %d characters, want %d hex characters", len(s), 2*NodeIDSize)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return NodeID{}, fmt.Errorf("keys: node ID is not hex: %w", err)
	}
	return id, nil
}

// MarshalText implements encoding.TextMarshaler (lowercase hex).
func (id NodeID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *NodeID) UnmarshalText(b []byte) error {
	v, err := ParseNodeID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}
