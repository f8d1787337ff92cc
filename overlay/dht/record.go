package dht

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// Specification constants of the record envelope (spec/dht.md §2).
const (
	// SignatureContext starts the bytes a record signature covers.
	SignatureContext = "darkmatter dht record v1\x00"
	// KeySize is the size of a record key and of a lookup target.
	KeySize = 32
	// MaxValueSize is the hard limit on a record value, whatever its type.
	MaxValueSize = 16 << 10
	// recordFixed is the size of a record without its value.
	recordFixed = 2 + KeySize + keys.PublicKeySize + 8 + 8 + 2 + keys.SignatureSize
	// MaxRecordSize is the largest encoded record.
	MaxRecordSize = recordFixed + MaxValueSize
	// maxExpires is the largest expiry (9999-12-31T23:59:59Z), as in descriptors.
	maxExpires = 253402300799
	// MaxNetworkLen is the longest network name a signature accepts.
	MaxNetworkLen = keys.MaxNetworkLen
)

// Key is a record key, or any point of the 256-bit DHT key space.
type Key [KeySize]byte

// Record is the signed envelope of everything stored in the DHT.
//
//	size  field
//	2     type (uint16, see Registry)
//	32    key
//	32    owner (Ed25519 public key)
//	8     sequence number (uint64; higher replaces lower for one key and owner)
//	8     expiry (int64 unix seconds, 1..253402300799)
//	2     value length v (0..16384)
//	v     value
//	64    Ed25519 signature by the owner over SignatureContext ||
//	      network name length (1 byte) || network name || every preceding byte
type Record struct {
	Type      uint16
	Key       Key
	Owner     keys.IdentityPublicKey
	Seq       uint64
	Expires   int64 // unix seconds
	Value     []byte
	Signature [keys.SignatureSize]byte
}

// ErrMalformed is wrapped by every structural decoding error.
var ErrMalformed = errors.New("dht: malformed")

// ExpiresAt returns the expiry as a time.
func (r *Record) ExpiresAt() time.Time { return time.Unix(r.Expires, 0) }

// Size returns the encoded size of r.
func (r *Record) Size() int { return recordFixed + len(r.Value) }

// Marshal returns the wire form of r.
func (r *Record) Marshal() []byte { return r.AppendMarshal(make([]byte, 0, r.Size())) }

// AppendMarshal appends the wire form of r to b.
func (r *Record) AppendMarshal(b []byte) []byte {
	b = r.appendBody(b)
	return append(b, r.Signature[:]...)
}

func (r *Record) appendBody(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, r.Type)
	b = append(b, r.Key[:]...)
	b = append(b, r.Owner[:]...)
	b = binary.BigEndian.AppendUint64(b, r.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Expires))
	b = binary.BigEndian.AppendUint16(b, uint16(len(r.Value)))
	return append(b, r.Value...)
}

// signedBytes returns what the signature covers for network.
func (r *Record) signedBytes(network string) []byte {
	b := keys.AppendSigned(make([]byte, 0, len(SignatureContext)+1+len(network)+r.Size()), SignatureContext, network, nil)
	return r.appendBody(b)
}

// Sign sets r.Owner to k's public key and signs r for network. It fails on
// a network name that is empty or longer than MaxNetworkLen, or a value
// over MaxValueSize.
func (r *Record) Sign(network string, k *keys.IdentityPrivateKey) error {
	return r.SignWith(network, k.Public(), func(msg []byte) []byte {
		sig := k.Sign(msg)
		return sig[:]
	})
}

// SignWith is Sign for an owner key held elsewhere, such as a hidden
// service's blinded key: sign must return owner's Ed25519 signature of msg.
func (r *Record) SignWith(network string, owner keys.IdentityPublicKey, sign func(msg []byte) []byte) error {
	if len(network) == 0 || len(network) > MaxNetworkLen {
		return fmt.Errorf("dht: network name of %d bytes", len(network))
	}
	if len(r.Value) > MaxValueSize {
		return fmt.Errorf("dht: value of %d bytes exceeds %d", len(r.Value), MaxValueSize)
	}
	r.Owner = owner
	sig := sign(r.signedBytes(network))
	if len(sig) != keys.SignatureSize {
		return fmt.Errorf("dht: signature of %d bytes", len(sig))
	}
	r.Signature = [keys.SignatureSize]byte(sig)
	return nil
}

// VerifySignature reports whether r carries its owner's signature for
// network. It checks nothing else; Registry.Verify checks everything.
func (r *Record) VerifySignature(network string) bool {
	if len(network) == 0 || len(network) > MaxNetworkLen || len(r.Value) > MaxValueSize {
		return false
	}
	return r.Owner.Verify(r.signedBytes(network), r.Signature[:])
}

// ParseRecord decodes a record. It checks the layout only (lengths, the
// expiry range, no trailing bytes); the signature and the type rules are
// checked by Registry.Verify.
func ParseRecord(b []byte) (*Record, error) {
	r, rest, err := parseRecord(b)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w record: %d trailing bytes", ErrMalformed, len(rest))
	}
	return r, nil
}

// parseRecord decodes one record at the start of b and returns the rest.
func parseRecord(b []byte) (*Record, []byte, error) {
	if len(b) < recordFixed {
		return nil, nil, fmt.Errorf("%w record: %d bytes, want at least %d", ErrMalformed, len(b), recordFixed)
	}
	r := &Record{Type: binary.BigEndian.Uint16(b)}
	b = b[2:]
	copy(r.Key[:], b)
	b = b[KeySize:]
	copy(r.Owner[:], b)
	b = b[keys.PublicKeySize:]
	r.Seq = binary.BigEndian.Uint64(b)
	r.Expires = int64(binary.BigEndian.Uint64(b[8:]))
	if r.Expires < 1 || r.Expires > maxExpires {
		return nil, nil, fmt.Errorf("%w record: expiry %d out of range", ErrMalformed, r.Expires)
	}
	n := int(binary.BigEndian.Uint16(b[16:]))
	b = b[18:]
	if n > MaxValueSize {
		return nil, nil, fmt.Errorf("%w record: value of %d bytes exceeds %d", ErrMalformed, n, MaxValueSize)
	}
	if len(b) < n+keys.SignatureSize {
		return nil, nil, fmt.Errorf("%w record: truncated value or signature", ErrMalformed)
	}
	r.Value = append([]byte(nil), b[:n]...)
	copy(r.Signature[:], b[n:])
	return r, b[n+keys.SignatureSize:], nil
}
