package descriptor

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics and that whatever it accepts
// marshals back to the same bytes.
func FuzzParse(f *testing.F) {
	d, k := testDescriptor()
	f.Add(d.Marshal())
	small := &Descriptor{Network: "n", KEM: d.KEM, ExitPolicy: "reject *:*"}
	small.OnionExpires, small.Published = d.OnionExpires, d.Published
	small.Sign(k.Identity)
	f.Add(small.Marshal())
	f.Add([]byte(Magic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Parse(b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "descriptor: ") {
				t.Fatalf("error %q lacks the descriptor: prefix", err)
			}
			return
		}
		if !bytes.Equal(d.Marshal(), b) {
			t.Fatal("accepted descriptor re-marshals differently")
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("accepted descriptor fails Validate: %v", err)
		}
		if d.Policy().String() != d.ExitPolicy {
			t.Fatal("Policy() differs from ExitPolicy")
		}
	})
}

// FuzzDecode fuzzes the structural checks without the signature, which
// random inputs never pass: whatever decode accepts must marshal back to the
// same bytes and pass Validate.
func FuzzDecode(f *testing.F) {
	d, _ := testDescriptor()
	f.Add(d.Marshal())
	f.Add(d.Marshal()[:100])
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := decode(b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "descriptor: ") {
				t.Fatalf("error %q lacks the descriptor: prefix", err)
			}
			return
		}
		if !bytes.Equal(d.Marshal(), b) {
			t.Fatalf("decoded descriptor re-marshals differently:\n in %x\nout %x", b, d.Marshal())
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("decoded descriptor fails Validate: %v", err)
		}
	})
}

// FuzzParseBootstrap checks that ParseBootstrap never panics and that an
// accepted string is the canonical one up to the ID's letter case.
func FuzzParseBootstrap(f *testing.F) {
	d, _ := testDescriptor()
	s := d.Bootstrap().String()
	f.Add(s)
	f.Add(strings.ToUpper(s[:BootstrapIDLength]) + s[BootstrapIDLength:])
	f.Add(s[:BootstrapIDLength] + "@[2001:db8::1]:443")
	f.Add(s[:BootstrapIDLength] + "@")
	f.Add("@")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseBootstrap(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "descriptor: ") {
				t.Fatalf("error %q lacks the descriptor: prefix", err)
			}
			return
		}
		out := b.String()
		id, addr, _ := strings.Cut(s, "@")
		if out != strings.ToLower(id)+"@"+addr {
			t.Fatalf("ParseBootstrap(%q).String() = %q", s, out)
		}
		if again, err := ParseBootstrap(out); err != nil || again != b {
			t.Fatalf("canonical %q does not parse back: %v", out, err)
		}
	})
}
