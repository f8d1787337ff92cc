package keys

import (
	"bytes"
	"strings"
	"testing"
)

var keyFileTypes = []string{IdentityKeyType, LinkKeyType, OnionKeyType, KEMKeyType, ServiceKeyType}

// keyFromSeed returns the key of PEM type typ with the given seed, as
// parseKeyFile returns it, or nil for an unknown type.
func keyFromSeed(typ string, seed []byte) PrivateKey {
	switch typ {
	case IdentityKeyType:
		return IdentityFromSeed([32]byte(seed))
	case LinkKeyType:
		return LinkFromBytes([32]byte(seed))
	case OnionKeyType:
		return OnionFromBytes([32]byte(seed))
	case KEMKeyType:
		return KEMFromSeed([64]byte(seed))
	case ServiceKeyType:
		return ServiceFromSeed([32]byte(seed))
	}
	return nil
}

// FuzzParseKeyFile checks that the key file parser never panics and that
// whatever it accepts re-encodes to a file it accepts with the same seed.
func FuzzParseKeyFile(f *testing.F) {
	for i, typ := range keyFileTypes {
		f.Add("-----BEGIN "+typ+"-----\n", uint8(i))
	}
	for _, k := range []PrivateKey{IdentityFromSeed([32]byte{1}), LinkFromBytes([32]byte{2}), OnionFromBytes([32]byte{3}), KEMFromSeed([64]byte{4}), ServiceFromSeed([32]byte{5})} {
		data := string(EncodeKeyFile(k))
		for i := range keyFileTypes {
			f.Add(data, uint8(i))
			f.Add("\n"+data+"\n", uint8(i))
			f.Add(data+data, uint8(i))
		}
	}
	f.Add("-----BEGIN DARKMATTER IDENTITY KEY-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END DARKMATTER IDENTITY KEY-----\n", uint8(0))
	f.Fuzz(func(t *testing.T, data string, which uint8) {
		typ := keyFileTypes[int(which)%len(keyFileTypes)]
		seed, err := parseKeyFile([]byte(data), typ)
		if err != nil {
			if strings.HasPrefix(err.Error(), "keys:") {
				t.Fatalf("parseKeyFile error %q carries the prefix loadKeyFile adds", err)
			}
			return
		}
		if len(seed) != seedSizes[typ] {
			t.Fatalf("accepted a %d-byte %s", len(seed), typ)
		}
		again, err := parseKeyFile(EncodeKeyFile(keyFromSeed(typ, seed)), typ)
		if err != nil || !bytes.Equal(again, seed) {
			t.Fatalf("re-encoded key file: %x, %v; want %x", again, err, seed)
		}
	})
}

// FuzzParseAddress checks that ParseAddress never panics and that an
// accepted address is the canonical one, up to letter case and the suffix.
func FuzzParseAddress(f *testing.F) {
	good := ServiceFromSeed([32]byte{1}).Public().Address()
	f.Add(good)
	f.Add(strings.ToUpper(good))
	f.Add(strings.TrimSuffix(good, ".dark"))
	f.Add(good[:40])
	f.Add("")
	f.Add(".dark")
	f.Add(strings.Repeat("a", 56) + ".dark")
	f.Add(withChecksum(ServicePublicKey{1}))    // the identity
	f.Add(withChecksum(ServicePublicKey{0xee})) // not on the curve
	f.Fuzz(func(t *testing.T, s string) {
		pub, err := ParseAddress(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "keys: ") {
				t.Fatalf("error %q lacks the keys: prefix", err)
			}
			return
		}
		if !validServiceKey(pub) {
			t.Fatalf("ParseAddress(%q) accepted an invalid key", s)
		}
		addr := pub.Address()
		if !strings.EqualFold(addr, s) && !strings.EqualFold(strings.TrimSuffix(addr, AddressSuffix), s) {
			t.Fatalf("ParseAddress(%q) accepted a non-canonical form of %q", s, addr)
		}
		if again, err := ParseAddress(addr); err != nil || again != pub {
			t.Fatalf("canonical address %q does not parse back: %v", addr, err)
		}
	})
}

// FuzzParseNodeID checks that ParseNodeID never panics and round-trips.
func FuzzParseNodeID(f *testing.F) {
	f.Add(IdentityFromSeed([32]byte{}).Public().NodeID().String())
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseNodeID(s)
		if err != nil {
			return
		}
		if !strings.EqualFold(id.String(), s) {
			t.Fatalf("ParseNodeID(%q) = %s", s, id)
		}
	})
}
