package names

import (
	"errors"
	"strings"
	"testing"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

func TestCanonicalName(t *testing.T) {
	good := map[string]string{
		"alice": "alice", "Alice.DARK": "alice", "alice.dark.": "alice", "alice.": "alice",
		"blog.alice": "blog.alice", "a-b.c0.d.e": "a-b.c0.d.e", "x": "x", "0": "0",
		strings.Repeat("a", 63): strings.Repeat("a", 63), strings.Repeat("b", 55) + ".dark": strings.Repeat("b", 55),
		strings.Repeat("c", 57): strings.Repeat("c", 57),
	}
	for in, want := range good {
		if got, err := CanonicalName(in); err != nil || got != want {
			t.Errorf("CanonicalName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	long := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 62)
	if len(long) != 254 {
		t.Fatal(len(long))
	}
	bad := []string{"", ".", ".dark", "dark", "a.dark.dark", "a..b", ".a", "a.b.c.d.e", "-a", "a-", "a.-b", "xn--nxasmq6b",
		"ab--c", "a_b", "a b", "a/b", "café", "\x00", "a\xff", strings.Repeat("a", 64), long, strings.Repeat("a", 56),
		"www." + strings.Repeat("z", 56), strings.Repeat("q", 56) + ".x"}
	for _, in := range bad {
		if got, err := CanonicalName(in); !errors.Is(err, ErrName) {
			t.Errorf("CanonicalName(%q) = %q, %v; want ErrName", in, got, err)
		} else if len(in) > 4 && strings.Contains(err.Error(), in) {
			t.Errorf("error quotes the name: %v", err)
		}
	}
}

// No key address, in any form, is a name: a name can never be confused
// with a key address.
func TestKeyAddressIsNeverAName(t *testing.T) {
	for i := range 64 {
		var seed [keys.SeedSize]byte
		seed[0], seed[1] = byte(i), 0x99
		a := keys.ServiceFromSeed(seed).Public().Address()
		label := strings.TrimSuffix(a, keys.AddressSuffix)
		for _, s := range []string{a, label, strings.ToUpper(a), "www." + a, a + ".", label + ".x"} {
			if _, err := CanonicalName(s); err == nil {
				t.Fatalf("key address form %q accepted as a name", s)
			}
		}
	}
}

func TestKey(t *testing.T) {
	if Key("alice") == Key("alice.x") || Key("a") != Key("a") {
		t.Fatal("keys do not separate names")
	}
}
