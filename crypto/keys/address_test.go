package keys

import (
	"encoding/base32"
	"errors"
	"strings"
	"testing"

	"filippo.io/edwards25519"
)

func TestAddressRoundTrip(t *testing.T) {
	for i := range 20 {
		k, err := GenerateService(testRand(byte(i)))
		if err != nil {
			t.Fatal(err)
		}
		addr := k.Public().Address()
		if len(addr) != AddressLabelLength+len(AddressSuffix) || !strings.HasSuffix(addr, ".dark") || strings.ToLower(addr) != addr {
			t.Fatalf("Address() = %q", addr)
		}
		if k.Public().String() != addr {
			t.Fatal("String() != Address()")
		}
		label := strings.TrimSuffix(addr, ".dark")
		for _, in := range []string{addr, label, strings.ToUpper(addr), strings.ToUpper(label) + ".Dark"} {
			got, err := ParseAddress(in)
			if err != nil || got != k.Public() {
				t.Fatalf("ParseAddress(%q) = %x, %v", in, got, err)
			}
		}
	}
}

// rawAddress encodes arbitrary pubkey, checksum and version bytes.
func rawAddress(pub ServicePublicKey, sum [2]byte, version byte) string {
	raw := append(append(pub[:], sum[:]...), version)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw)) + ".dark"
}

func TestParseAddressErrors(t *testing.T) {
	pub := ServiceFromSeed([32]byte{42}).Public()
	good := pub.Address()
	sum := addressChecksum(pub, AddressVersion)
	sum2 := addressChecksum(pub, 2)
	flipped := []byte(good)
	if flipped[0] == 'a' {
		flipped[0] = 'b'
	} else {
		flipped[0] = 'a'
	}
	tests := []struct {
		in   string
		want error
	}{
		{"", ErrAddressLength},
		{".dark", ErrAddressLength},
		{good[:55] + ".dark", ErrAddressLength},
		{"a" + good, ErrAddressLength},
		{good + ".dark", ErrAddressLength},
		{"www." + good, ErrAddressLength},
		{good + ".", ErrAddressLength},
		{strings.Replace(good, good[:1], "1", 1), ErrAddressEncoding}, // '1' is not base32
		{strings.Replace(good, good[:1], "=", 1), ErrAddressEncoding},
		{strings.Replace(good, good[:2], "é", 1), ErrAddressEncoding},
		{string(flipped), ErrAddressChecksum},
		{rawAddress(pub, [2]byte{sum[0] ^ 1, sum[1]}, 1), ErrAddressChecksum},
		{rawAddress(pub, [2]byte{sum[0], sum[1]}, 2), ErrAddressVersion},
		{rawAddress(pub, [2]byte{sum2[0], sum2[1]}, 2), ErrAddressVersion},
		{rawAddress(pub, [2]byte{sum[0], sum[1]}, 0), ErrAddressVersion},
	}
	for _, tt := range tests {
		_, err := ParseAddress(tt.in)
		if !errors.Is(err, tt.want) {
			t.Errorf("ParseAddress(%q) error = %v, want %v", tt.in, err, tt.want)
		}
	}
	if rawAddress(pub, [2]byte{sum[0], sum[1]}, 1) != good {
		t.Fatal("rawAddress helper disagrees with Address")
	}
}

// withChecksum builds a well-formed version-1 address around any 32 bytes.
func withChecksum(pub ServicePublicKey) string {
	sum := addressChecksum(pub, AddressVersion)
	return rawAddress(pub, [2]byte{sum[0], sum[1]}, AddressVersion)
}

func TestParseAddressKeyChecks(t *testing.T) {
	good := ServiceFromSeed([32]byte{7}).Public()
	pt, err := new(edwards25519.Point).SetBytes(good[:])
	if err != nil {
		t.Fatal(err)
	}
	// A point of order 2: (0, -1), encoded y = p-1 = 2^255-20.
	var order2 ServicePublicKey
	order2[0] = 0xec
	for i := 1; i < 31; i++ {
		order2[i] = 0xff
	}
	order2[31] = 0x7f
	t2, err := new(edwards25519.Point).SetBytes(order2[:])
	if err != nil {
		t.Fatal(err)
	}
	var mixed ServicePublicKey
	copy(mixed[:], new(edwards25519.Point).Add(pt, t2).Bytes())
	// The identity (y = 1), and y = 1 encoded non-canonically as p+1.
	identity := ServicePublicKey{1}
	nonCanonical := ServicePublicKey{0xee}
	for i := 1; i < 31; i++ {
		nonCanonical[i] = 0xff
	}
	nonCanonical[31] = 0x7f
	// A y with no x on the curve.
	var offCurve ServicePublicKey
	for b := byte(2); ; b++ {
		offCurve = ServicePublicKey{b}
		if _, err := new(edwards25519.Point).SetBytes(offCurve[:]); err != nil {
			break
		}
	}
	for name, pub := range map[string]ServicePublicKey{
		"identity": identity, "order 2": order2, "torsion component": mixed,
		"non-canonical": nonCanonical, "off the curve": offCurve,
	} {
		if _, err := ParseAddress(withChecksum(pub)); !errors.Is(err, ErrAddressKey) {
			t.Errorf("%s: ParseAddress error = %v, want ErrAddressKey", name, err)
		}
	}
	if got, err := ParseAddress(withChecksum(good)); err != nil || got != good {
		t.Fatalf("good key: %x, %v", got, err)
	}
}

// TestParseAddressErrorText checks that no error quotes the input, which
// callers may log, and that each class has its own text.
func TestParseAddressErrorText(t *testing.T) {
	good := ServiceFromSeed([32]byte{3}).Public().Address()
	seen := map[string]bool{}
	for _, in := range []string{good[:20], "1" + good[1:], withChecksum(ServicePublicKey{1}), "b" + good[1:]} {
		_, err := ParseAddress(in)
		if err == nil {
			t.Fatalf("%q accepted", in)
		}
		if strings.Contains(err.Error(), in[2:12]) {
			t.Errorf("error %q quotes the address", err)
		}
		seen[err.Error()] = true
	}
	if len(seen) < 3 {
		t.Errorf("error texts not distinct: %v", seen)
	}
}
