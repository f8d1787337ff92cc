package keys

import (
	"encoding/base32"
	"errors"
	"strings"
	"testing"
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
