package specialname

import (
	"net/netip"
	"strings"
	"testing"
)

// FuzzCheck checks that Check never panics, ignores ASCII letter case and
// trailing dots, refuses every name under a refused one, and lets IP
// literals pass.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{"abc.dark", "x.onion.", "localhost", "nas.home.arpa", "example.com", "127.0.0.1", "::1", "", ".", "..", "a.HOME.arpa.."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		err := Check(host)
		if got := Check(strings.ToUpper(host)); asciiOnly(host) && got != err {
			t.Fatalf("Check(%q) = %v but Check(upper) = %v", host, err, got)
		}
		if got := Check(host + "."); got != err && !isIP(host+".") && !isIP(host) {
			t.Fatalf("Check(%q) = %v but with a trailing dot %v", host, err, got)
		}
		if err != nil {
			if got := Check("sub." + host); got != err {
				t.Fatalf("Check(%q) = %v but Check(sub.%s) = %v", host, err, host, got)
			}
		}
		if isIP(host) && err != nil {
			t.Fatalf("IP literal %q refused: %v", host, err)
		}
	})
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

func asciiOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
