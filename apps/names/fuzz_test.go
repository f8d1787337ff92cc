package names

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// FuzzParse checks that Parse never panics and that what it accepts
// re-encodes to the same bytes.
func FuzzParse(f *testing.F) {
	r := &Record{Name: "blog.alice", Registered: epoch, Expires: epoch.Add(time.Hour), Nonce: 7,
		Entries: []Entry{AddressEntry(service(1)), TextEntry("hi"), ModuleEntry([32]byte{1}), SiteEntry([32]byte{2})}}
	b, err := r.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:len(b)-1])
	f.Add([]byte{1, 1, 'a'})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Parse(b)
		if err != nil {
			return
		}
		out, err := r.Marshal()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("accepted record re-encodes differently: %v", err)
		}
	})
}

// FuzzCanonicalName checks that CanonicalName never panics, is
// idempotent, and never accepts anything with a key address's label.
func FuzzCanonicalName(f *testing.F) {
	for _, s := range []string{"alice", "Blog.Alice.dark.", "a..b", "café", strings.Repeat("a", 56), service(1).Address(), "xn--a", "-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := CanonicalName(s)
		if err != nil {
			return
		}
		if c2, err := CanonicalName(c); err != nil || c2 != c {
			t.Fatalf("not idempotent: %q -> %q, %v", c, c2, err)
		}
		if c2, err := CanonicalName(c + ".DARK"); err != nil || c2 != c {
			t.Fatalf("suffix changes the name: %q, %v", c2, err)
		}
		for _, l := range strings.Split(c, ".") {
			if len(l) == keys.AddressLabelLength {
				t.Fatal("a 56-byte label accepted")
			}
			if _, err := keys.ParseAddress(l); err == nil {
				t.Fatal("a key address accepted")
			}
		}
	})
}

// FuzzPetnames checks that ParsePetnames never panics and that every name
// it holds resolves to a valid address.
func FuzzPetnames(f *testing.F) {
	a := service(1).Address()
	f.Add("alice " + a + "\n# c\n\nbob\t" + a + " # x\n")
	f.Add("alice\n")
	f.Add("a " + a + "\na " + a)
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePetnames(strings.NewReader(s))
		if err != nil {
			return
		}
		for name, addr := range p.m {
			if got, ok := p.Lookup(name); !ok || got != addr {
				t.Fatalf("Lookup of a held name failed")
			}
			if _, err := keys.ParseAddress(addr); err != nil {
				t.Fatalf("held address invalid: %v", err)
			}
		}
	})
}
