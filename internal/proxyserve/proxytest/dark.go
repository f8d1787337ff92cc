package proxytest

import (
	"crypto/sha3"
	"encoding/base32"
	"strings"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// DarkHosts returns a valid .dark address and, by class, hosts under
// .dark that the proxies refuse as mistyped (spec/streams.md §7): an
// address (a label of 56 bytes before .dark) failing each check of
// spec/keys.md §3 ("base32", "version", "checksum", "key"), and names
// that break a rule of spec/names.md §1 ("name-char": a byte outside
// [a-z0-9-], "name-labels": five labels, "name-56": a label of 56 bytes
// that is not the last). Every host has at least 30 bytes, so that tests
// can look for its bytes 8 to 30 in what must not name it.
func DarkHosts() (valid string, mistyped map[string]string) {
	valid = keys.ServiceFromSeed([32]byte{5}).Public().Address()
	label := strings.TrimSuffix(valid, ".dark")
	set := func(i int, c byte) string {
		b := []byte(label)
		b[i] = c
		return string(b) + ".dark"
	}
	first := byte('a')
	if label[0] == 'a' {
		first = 'b'
	}
	// The identity point, with a correct checksum and version: no key.
	var raw [35]byte
	raw[0] = 1
	h := sha3.New256()
	h.Write([]byte(".dark checksum"))
	h.Write(raw[:32])
	h.Write([]byte{1})
	sum := h.Sum(nil)
	raw[32], raw[33], raw[34] = sum[0], sum[1], 1
	identity := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw[:])) + ".dark"
	return valid, map[string]string{
		"base32":      set(7, '8'),
		"version":     set(55, 'c'),
		"checksum":    set(0, first),
		"key":         identity,
		"name-char":   "my_blog.alice-and-bob-at-home.dark",
		"name-labels": "a.b.c.d.alice-and-bob-at-home.dark",
		"name-56":     label + ".www.dark",
	}
}

// DarkNames returns hosts under .dark that are valid names (spec/names.md
// §1), which the proxies pass to their Dialer for the node to resolve:
// one label, several in mixed case with trailing dots, four labels, and
// labels of 55 and 57 bytes (an address's label has 56, so these are
// names, never mistyped addresses).
func DarkNames() []string {
	label := strings.TrimSuffix(keys.ServiceFromSeed([32]byte{5}).Public().Address(), ".dark")
	return []string{
		"alice.dark",
		"Blog.Alice.DARK.",
		"a-1.b.c.d.dark",
		label[1:] + ".dark",
		"www." + label + "a.dark",
	}
}
