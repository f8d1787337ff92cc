package dht

import (
	"crypto/sha256"
	"errors"
	"time"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// TypeSigned is the generic record type: a named, signed value of one
// owner. Its value is a 1-byte name length n (1..255), the name, then the
// data; its key is SHA-256(SignedKeyContext || owner || name), so only the
// owner can publish under it.
const TypeSigned uint16 = 1

// SignedKeyContext starts the hash input of a TypeSigned key.
const SignedKeyContext = "darkmatter dht signed\x00"

// SignedSpec is the registry entry of TypeSigned: values up to 4 KiB,
// lifetimes up to 48 hours.
var SignedSpec = TypeSpec{
	Name:     "signed",
	MaxValue: 4 << 10,
	MaxTTL:   48 * time.Hour,
	Validate: validateSigned,
}

// SignedKey returns the key of owner's TypeSigned record called name.
func SignedKey(owner keys.IdentityPublicKey, name string) Key {
	h := sha256.New()
	h.Write([]byte(SignedKeyContext))
	h.Write(owner[:])
	h.Write([]byte(name))
	return Key(h.Sum(nil))
}

// NewSigned builds and signs a TypeSigned record.
func NewSigned(network string, k *keys.IdentityPrivateKey, name string, data []byte, seq uint64, expires time.Time) (*Record, error) {
	if len(name) == 0 || len(name) > 255 {
		return nil, errors.New("dht: signed record name must be 1..255 bytes")
	}
	v := make([]byte, 0, 1+len(name)+len(data))
	v = append(v, byte(len(name)))
	v = append(v, name...)
	v = append(v, data...)
	r := &Record{Type: TypeSigned, Key: SignedKey(k.Public(), name), Seq: seq, Expires: expires.Unix(), Value: v}
	if err := r.Sign(network, k); err != nil {
		return nil, err
	}
	return r, nil
}

// SplitSigned returns the name and data of a TypeSigned value.
func SplitSigned(r *Record) (name string, data []byte, err error) {
	if len(r.Value) < 1 || r.Value[0] == 0 || len(r.Value) < 1+int(r.Value[0]) {
		return "", nil, errors.New("value does not start with a 1..255-byte name")
	}
	n := int(r.Value[0])
	return string(r.Value[1 : 1+n]), r.Value[1+n:], nil
}

func validateSigned(r *Record) error {
	name, _, err := SplitSigned(r)
	if err != nil {
		return err
	}
	if SignedKey(r.Owner, name) != r.Key {
		return errors.New("key is not SHA-256(context || owner || name)")
	}
	return nil
}
