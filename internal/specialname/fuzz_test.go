package specialname

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/darkmatter/darkmatter/apps/names"
	"github.com/darkmatter/darkmatter/crypto/keys"
)

// FuzzCheck checks that Check never panics, ignores ASCII letter case and
// trailing dots, refuses every name under a refused one (outside the
// names of .dark, whose number of labels is bounded), tells addresses and
// names apart by the length of the last label before .dark, agrees with
// apps/names.CanonicalName on what a name is, and lets IP literals pass;
// and that Name round-trips.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{"abc.dark", "x.onion.", "localhost", "nas.home.arpa", "example.com", "127.0.0.1", "::1", "", ".", "..", "a.HOME.arpa..", validAddr, "www." + strings.ToUpper(validAddr) + ".", keyless + ".dark",
		"Blog.Alice.dark.", "a_b.dark", "dark", "a.b.c.d.e.dark", "xn--a.dark", validLabel[1:] + ".dark", validLabel + ".www.dark"} {
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
		switch sub := Check("sub." + host); {
		case err == ErrName:
			if sub != ErrName && sub != ErrBadName {
				t.Fatalf("Check(%q) = ErrName but Check(sub.%s) = %v", host, host, sub)
			}
		case err == ErrBadName && isDark(strings.TrimRight(host, ".")):
			if sub != ErrName {
				t.Fatalf("Check(%q) = ErrBadName but Check(sub.%s) = %v", host, host, sub)
			}
		case err != nil && sub != err:
			t.Fatalf("Check(%q) = %v but Check(sub.%s) = %v", host, err, host, sub)
		}
		rest, last := cutLast(strings.TrimRight(host, "."))
		part := strings.TrimSuffix(rest, ".")
		_, label := cutLast(part)
		switch {
		case !isDark(last):
			if err == ErrName || err == ErrBadName || err == ErrHiddenService || IsMistyped(err) {
				t.Fatalf("Check(%q) = %v for a host not under .dark", host, err)
			}
		case len(label) == keys.AddressLabelLength:
			if err != ErrHiddenService && (!IsMistyped(err) || err == ErrBadName) {
				t.Fatalf("Check(%q) = %v for a label of 56 bytes", host, err)
			}
		default:
			canon, cerr := names.CanonicalName(part + ".dark")
			if (err == ErrName) != (cerr == nil) || err != ErrName && err != ErrBadName {
				t.Fatalf("Check(%q) = %v but CanonicalName: %v", host, err, cerr)
			}
			name, nerr := Name(host)
			if err == ErrName && (nerr != nil || name != canon || Check(name+".dark") != ErrName) {
				t.Fatalf("Name(%q) = %q, %v; CanonicalName %q", host, name, nerr, canon)
			}
			if rt, _ := Name(name + ".DARK."); err == ErrName && rt != name {
				t.Fatalf("Name(%q) = %q, but Name(%q.DARK.) = %q", host, name, name, rt)
			}
		}
		if n, nerr := Name(host); (nerr == nil) != (err == ErrName) || nerr != nil && n != "" {
			t.Fatalf("Name(%q) = %q, %v but Check %v", host, n, nerr, err)
		}
		if err == ErrHiddenService {
			rest, _ := cutLast(strings.TrimRight(host, "."))
			if _, label := cutLast(strings.TrimSuffix(rest, ".")); len(label) != keys.AddressLabelLength {
				t.Fatalf("Check(%q) = ErrHiddenService for a label of %d bytes", host, len(label))
			} else if _, perr := keys.ParseAddress(label); perr != nil {
				t.Fatalf("Check(%q) = ErrHiddenService but ParseAddress: %v", host, perr)
			}
		}
		if e, ok := err.(*Error); ok && e.Mistyped() && !strings.HasPrefix(e.Error(), "mistyped .dark ") {
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
