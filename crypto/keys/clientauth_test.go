package keys

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestClientAuthKey(t *testing.T) {
	k, err := GenerateClientAuth(testRand(30))
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := GenerateClientAuth(testRand(30))
	if k.Public() != k2.Public() || k.Bytes() != k2.Bytes() {
		t.Fatal("same randomness, different key")
	}
	if ClientAuthFromBytes(k.Bytes()).Public() != k.Public() {
		t.Fatal("ClientAuthFromBytes changes the key")
	}
	// The public key is X25519 of the private key: both sides of a DH agree.
	other, _ := GenerateClientAuth(testRand(31))
	op, err := other.Public().ECDH()
	if err != nil {
		t.Fatal(err)
	}
	kp, _ := k.Public().ECDH()
	s1, err1 := k.ECDH().ECDH(op)
	s2, err2 := other.ECDH().ECDH(kp)
	if err1 != nil || err2 != nil || !bytes.Equal(s1, s2) {
		t.Fatal("X25519 shared secrets differ")
	}
	for _, s := range []string{k.String(), k.GoString()} {
		b := k.Bytes()
		if !strings.Contains(s, "redacted") || strings.Contains(s, hex.EncodeToString(b[:])) {
			t.Fatalf("String leaks the key: %q", s)
		}
	}
	if _, err := GenerateClientAuth(bytes.NewReader(make([]byte, 31))); err == nil {
		t.Fatal("short randomness accepted")
	}
	k.Erase()
	if k.Bytes() != ([32]byte{}) {
		t.Fatal("Erase left the key")
	}
}

func TestClientAuthPublicKeyText(t *testing.T) {
	k, _ := GenerateClientAuth(testRand(32))
	p := k.Public()
	s := p.String()
	if len(s) != ClientAuthPublicKeyLength || s != strings.ToLower(s) || strings.Contains(s, "=") {
		t.Fatalf("String() = %q: want 52 lowercase base32 characters", s)
	}
	for _, in := range []string{s, strings.ToUpper(s), strings.ToUpper(s[:10]) + s[10:]} {
		got, err := ParseClientAuthPublicKey(in)
		if err != nil || got != p {
			t.Fatalf("Parse(%q) = %v, %v", in, got, err)
		}
	}
	// A fixed key: base32 of 00 01 .. 1f.
	var fixed ClientAuthPublicKey
	for i := range fixed {
		fixed[i] = byte(i)
	}
	if got := fixed.String(); got != "aaaqeayeaudaocajbifqydiob4ibceqtcqkrmfyydenbwha5dypq" {
		t.Fatalf("String() = %q", got)
	}
	var u ClientAuthPublicKey
	if err := u.UnmarshalText([]byte(s)); err != nil || u != p {
		t.Fatal("UnmarshalText")
	}
	if b, _ := p.MarshalText(); string(b) != s {
		t.Fatal("MarshalText")
	}
	if err := u.UnmarshalText([]byte("x")); err == nil {
		t.Fatal("UnmarshalText accepted garbage")
	}
}

func TestParseClientAuthPublicKeyRefusals(t *testing.T) {
	k, _ := GenerateClientAuth(testRand(33))
	good := k.Public().String()
	// The last character carries 1 data bit and 4 zero bits: "q" (10000)
	// has them zero, "r" (10001) does not.
	canon := ClientAuthPublicKey{31: 0x01}.String()
	if canon[51] != 'q' {
		t.Fatalf("test assumption: last char %q", canon[51])
	}
	lowOrder := []string{
		"0000000000000000000000000000000000000000000000000000000000000000",
		"0100000000000000000000000000000000000000000000000000000000000000",
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
		"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	}
	cases := []struct {
		in   string
		want error
	}{
		{"", ErrClientAuthLength},
		{good[:51], ErrClientAuthLength},
		{good + "a", ErrClientAuthLength},
		{good + "=", ErrClientAuthLength},
		{good[:51] + "1", ErrClientAuthEncoding},
		{good[:51] + "=", ErrClientAuthEncoding},
		{"0" + good[1:], ErrClientAuthEncoding},
		{canon[:51] + "r", ErrClientAuthEncoding},
	}
	for _, h := range lowOrder {
		b, _ := hex.DecodeString(h)
		cases = append(cases, struct {
			in   string
			want error
		}{ClientAuthPublicKey(b).String(), ErrClientAuthKey})
	}
	for _, c := range cases {
		_, err := ParseClientAuthPublicKey(c.in)
		if !errors.Is(err, c.want) {
			t.Errorf("Parse(%q) = %v, want %v", c.in, err, c.want)
			continue
		}
		if len(c.in) > 4 && strings.Contains(err.Error(), c.in) {
			t.Errorf("error %q quotes the input", err)
		}
	}
	if _, err := ParseClientAuthPublicKey(canon); err != nil {
		t.Fatalf("canonical key refused: %v", err)
	}
}

func TestClientAuthKeyFile(t *testing.T) {
	dir := t.TempDir()
	k, _ := GenerateClientAuth(testRand(34))
	path := filepath.Join(dir, "client.key")
	if err := WriteFile(path, k); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("-----BEGIN DARKMATTER CLIENT AUTH KEY-----\n")) {
		t.Fatalf("file:\n%s", data)
	}
	got, err := LoadClientAuthFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Bytes() != k.Bytes() || got.Public() != k.Public() {
		t.Fatal("key changed in the round trip")
	}
	// Another role's file is refused with a clear error, both ways.
	onion := filepath.Join(dir, "onion.key")
	if err := WriteFile(onion, OnionFromBytes(k.Bytes())); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadClientAuthFile(onion); err == nil || !strings.Contains(err.Error(), "not a client auth key") {
		t.Fatalf("onion key loaded as client auth key: %v", err)
	}
	if _, err := LoadOnionFile(path); err == nil || !strings.Contains(err.Error(), "DARKMATTER CLIENT AUTH KEY, not an onion key") {
		t.Fatalf("client auth key loaded as onion key: %v", err)
	}
	if _, err := LoadClientAuthFile(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing file loaded")
	}
}

// FuzzParseClientAuthPublicKey checks that the parser never panics, that
// whatever it accepts prints back to the same text (in lowercase), and
// that it accepts what it prints.
func FuzzParseClientAuthPublicKey(f *testing.F) {
	k, _ := GenerateClientAuth(testRand(35))
	f.Add(k.Public().String())
	f.Add(strings.ToUpper(k.Public().String()))
	f.Add(ClientAuthPublicKey{}.String())
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseClientAuthPublicKey(s)
		if err != nil {
			return
		}
		if p.String() != strings.ToLower(s) {
			t.Fatalf("accepted %q, prints %q", s, p.String())
		}
		if q, err := ParseClientAuthPublicKey(p.String()); err != nil || q != p {
			t.Fatalf("refuses its own output: %v", err)
		}
	})
}
