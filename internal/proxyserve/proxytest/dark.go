package proxytest

import (
	"crypto/sha3"
	"encoding/base32"
	"strings"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// DarkHosts returns a valid .dark address and one mistyped address for
// each check of spec/keys.md §3 (length, base32, version, checksum, key),
// for the proxies' tests of how .dark names are refused.
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
		"length":   label[1:] + ".dark",
		"base32":   set(7, '8'),
		"version":  set(55, 'c'),
		"checksum": set(0, first),
		"key":      identity,
	}
}
