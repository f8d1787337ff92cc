package specialname

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// FuzzCheck checks that Check never panics, ignores ASCII letter case and
// trailing dots, refuses every name under a refused one, and lets IP
// literals pass.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{"abc.dark", "x.onion.", "localhost", "nas.home.arpa", "example.com", "127.0.0.1", "::1", "", ".", "..", "a.HOME.arpa..", validAddr, "www." + strings.ToUpper(validAddr) + ".", keyless + ".dark"} {
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
		if err == ErrHiddenService {
			rest, _ := cutLast(strings.TrimRight(host, "."))
			if _, label := cutLast(strings.TrimSuffix(rest, ".")); len(label) != keys.AddressLabelLength {
				t.Fatalf("Check(%q) = ErrHiddenService for a label of %d bytes", host, len(label))
			} else if _, perr := keys.ParseAddress(label); perr != nil {
				t.Fatalf("Check(%q) = ErrHiddenService but ParseAddress: %v", host, perr)
			}
		}
		if e, ok := err.(*Error); ok && e.Mistyped() && !strings.HasPrefix(e.Error(), "mistyped .dark address: ") {
			t.Fatalf("Check(%q) = %q", host, e)
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
