package socks

import (
	"strings"
	"testing"

	"github.com/darkmatter/darkmatter/internal/proxyserve/proxytest"
)

// A .dark address is refused before the Dialer is asked: a mistyped one
// with 0xF6 and a log line naming the failed check, a valid one with 0xF0;
// neither the log nor the reply names the address.
func TestDarkAddressReplies(t *testing.T) {
	d := &proxytest.Dialer{Fn: proxytest.MustNotDial}
	var rec proxytest.LogRecorder
	proxy := proxytest.StartProxy(t, &Server{Dialer: d, Logf: rec.Logf})
	valid, mistyped := proxytest.DarkHosts()
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
