package socks

import (
	"crypto/sha3"
	"encoding/base32"
	"strings"
	"testing"

	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/proxyserve/proxytest"
)

// darkHosts returns a valid .dark address and one mistyped address for
// each check of spec/keys.md §3, with the reply each must get.
func darkHosts() (valid string, mistyped map[string]string) {
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

// A .dark address is refused before the Dialer is asked: a mistyped one
// with 0xF6 and a log line naming the failed check, a valid one with 0xF0;
// neither the log nor the reply names the address.
func TestDarkAddressReplies(t *testing.T) {
	d := &proxytest.Dialer{Fn: proxytest.MustNotDial}
	var rec proxytest.LogRecorder
	proxy := proxytest.StartProxy(t, &Server{Dialer: d, Logf: rec.Logf})
	valid, mistyped := darkHosts()
	texts := map[string]string{
		"length":   "mistyped .dark address: wrong length",
		"base32":   "mistyped .dark address: a character is not base32",
		"version":  "mistyped .dark address: unknown address version",
		"checksum": "mistyped .dark address: bad checksum",
		"key":      "mistyped .dark address: it does not hold a valid service key",
	}
	type tc struct {
		host string
		want byte
		text string
	}
	cases := []tc{
		{valid, ReplyHSDescNotFound, "valid .dark address, but this client cannot reach hidden services yet"},
		{"www." + strings.ToUpper(valid) + ".", ReplyHSDescNotFound, "cannot reach hidden services yet"},
	}
	for class, host := range mistyped {
		cases = append(cases, tc{host, ReplyHSBadAddress, texts[class]}, tc{strings.ToUpper(host), ReplyHSBadAddress, texts[class]})
	}
	for i, tt := range cases {
		c, code := connect(t, proxy, AtypDomain, []byte(tt.host), 443)
		if code != tt.want {
			t.Errorf("%s: reply %#x, want %#x", tt.host, code, tt.want)
		}
		expectClosed(t, c)
		lines := rec.WaitLines(i + 1)
		if len(lines) != i+1 || !strings.Contains(lines[i], tt.text) {
			t.Errorf("%s: log %q, want %q", tt.host, lines, tt.text)
		}
	}
	if calls := d.Calls(); len(calls) != 0 {
		t.Fatalf("Dialer called for %q", calls)
	}
	secrets := []string{strings.TrimSuffix(valid, ".dark")[4:30]}
	for _, h := range mistyped {
		secrets = append(secrets, h[8:30])
	}
	proxytest.CheckNoAddresses(t, rec.Lines(), secrets...)
}
