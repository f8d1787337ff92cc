package descriptor

import (
	"bytes"
	"strings"
	"testing"

	"github.com/darkmatter/darkmatter/internal/testvec"
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
	addVectorSeeds(f)
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
		checkParsedExtensions(t, d)
	})
}

// FuzzDecode fuzzes the structural checks without the signature, which
// random inputs never pass: whatever decode accepts must marshal back to the
// same bytes and pass Validate.
func FuzzDecode(f *testing.F) {
	d, _ := testDescriptor()
	f.Add(d.Marshal())
	f.Add(d.Marshal()[:100])
	addVectorSeeds(f)
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
		checkParsedExtensions(t, d)
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
	f.Add(s[:BootstrapIDLength] + "@tcp://192.0.2.1:9001")
	f.Add(s[:BootstrapIDLength] + "@quic://[::1]:1")
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
		// A tcp address is written without its scheme, any other with it.
		if want := strings.TrimPrefix(b.Addr, "tcp://"); out != strings.ToLower(id)+"@"+want ||
			(addr != want && addr != b.Addr) {
			t.Fatalf("ParseBootstrap(%q).String() = %q", s, out)
		}
		if again, err := ParseBootstrap(out); err != nil || again != b {
			t.Fatalf("canonical %q does not parse back: %v", out, err)
		}
	})
}

// FuzzSplitAddr checks that SplitAddr and NormalizeAddr never panic, agree,
// and accept only what JoinAddr rebuilds.
func FuzzSplitAddr(f *testing.F) {
	for _, a := range []string{"tcp://192.0.2.1:9001", "quic://[2001:db8::1]:443", "relay.example.org:1", "tcp://", "://a:1", "TCP://a:1", ""} {
		f.Add(a)
	}
	f.Fuzz(func(t *testing.T, a string) {
		scheme, hostport, err := SplitAddr(a)
		n, nerr := NormalizeAddr(a)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "descriptor: ") {
				t.Fatalf("error %q lacks the descriptor: prefix", err)
			}
			if nerr == nil && n != JoinAddr(SchemeTCP, a) {
				t.Fatalf("NormalizeAddr(%q) = %q, but SplitAddr refuses it", a, n)
			}
			return
		}
		if JoinAddr(scheme, hostport) != a || len(a) > MaxAddrLen {
			t.Fatalf("SplitAddr(%q) = %q, %q", a, scheme, hostport)
		}
		if nerr != nil || n != a {
			t.Fatalf("NormalizeAddr(%q) = %q, %v", a, n, nerr)
		}
	})
}

// addVectorSeeds adds every encoded descriptor of spec/vectors, valid or
// not, to f's seed corpus.
func addVectorSeeds(f *testing.F) {
	var v descriptorVectors
	if err := testvec.Read(vectorsFile, &v); err != nil {
		f.Fatal(err)
	}
	for _, d := range v.Descriptors {
		f.Add(testvec.Hex(f, d.Encoded))
	}
	for _, d := range v.Invalid {
		f.Add(testvec.Hex(f, d.Encoded))
	}
}
