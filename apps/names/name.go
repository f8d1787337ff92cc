package names

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"

	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/dht"
)

// Specification constants of names (spec/names.md §1).
const (
	// MaxNameLen is the longest canonical name, in bytes.
	MaxNameLen = 253
	// MaxLabelLen is the longest label.
	MaxLabelLen = 63
	// MaxLabels is the most labels of a name.
	MaxLabels = 4
	// Suffix is the top-level label names are written under; it is not
	// part of the canonical name.
	Suffix = ".dark"
	// KeyContext starts the hash input of a name's DHT key.
	KeyContext = "darkmatter name\x00"
)

// ErrName is wrapped by every error of CanonicalName.
var ErrName = errors.New("names: invalid name")

// CanonicalName returns the canonical form of a name: ASCII letters
// lowered, one trailing dot and then one trailing ".dark" removed. It
// refuses (wrapping ErrName) a name that is empty or longer than
// MaxNameLen, holds a byte outside ASCII (no IDN in version 1) or outside
// [a-z0-9.-] once lowered, has more than MaxLabels labels, an empty label
// or one longer than MaxLabelLen, a label that starts or ends with '-' or
// has "--" in its third and fourth bytes (reserved, as for IDN's "xn--"),
// a last label "dark", or a label of keys.AddressLabelLength (56) bytes: a
// name can never be read as a key address (spec/names.md §1). Errors never
// quote the name.
func CanonicalName(s string) (string, error) {
	s = strings.TrimSuffix(s, ".")
	if len(s) > len(Suffix) && strings.EqualFold(s[len(s)-len(Suffix):], Suffix) {
		s = s[:len(s)-len(Suffix)]
	}
	if len(s) == 0 || len(s) > MaxNameLen {
		return "", fmt.Errorf("%w: %d bytes, want 1..%d", ErrName, len(s), MaxNameLen)
	}
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 0x80:
			return "", fmt.Errorf("%w: a byte outside ASCII (internationalised names are not supported)", ErrName)
		case c >= 'A' && c <= 'Z':
			b[i] = c + 'a' - 'A'
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '.':
		default:
			return "", fmt.Errorf("%w: byte 0x%02x is not a letter, digit, '-' or '.'", ErrName, c)
		}
	}
	s = string(b)
	labels := strings.Split(s, ".")
	if len(labels) > MaxLabels {
		return "", fmt.Errorf("%w: %d labels, want at most %d", ErrName, len(labels), MaxLabels)
	}
	for _, l := range labels {
		if err := checkLabel(l); err != nil {
			return "", err
		}
	}
	if labels[len(labels)-1] == "dark" {
		return "", fmt.Errorf("%w: the last label is \"dark\"", ErrName)
	}
	return s, nil
}

// checkLabel checks one lowercase label of [a-z0-9-].
func checkLabel(l string) error {
	switch {
	case len(l) == 0 || len(l) > MaxLabelLen:
		return fmt.Errorf("%w: a label of %d bytes, want 1..%d", ErrName, len(l), MaxLabelLen)
	case len(l) == keys.AddressLabelLength:
		return fmt.Errorf("%w: a label of %d bytes could be read as a key address", ErrName, len(l))
	case l[0] == '-' || l[len(l)-1] == '-':
		return fmt.Errorf("%w: a label starts or ends with '-'", ErrName)
	case len(l) >= 4 && l[2:4] == "--":
		return fmt.Errorf("%w: a label has \"--\" in its third and fourth bytes (reserved)", ErrName)
	}
	return nil
}

// Key returns the DHT key of a canonical name:
// SHA-256(KeyContext ‖ name). Callers canonicalise first.
func Key(name string) dht.Key {
	h := sha256.New()
	h.Write([]byte(KeyContext))
	h.Write([]byte(name))
	return dht.Key(h.Sum(nil))
}
