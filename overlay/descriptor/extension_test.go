package descriptor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/darkmatter/darkmatter/circuit/protover"
	"github.com/darkmatter/darkmatter/crypto/keys"
)

func TestProtocolsRoundTrip(t *testing.T) {
	k := testKeys()
	for _, set := range []protover.Set{
		{},
		testProtocols,
		protover.New(map[protover.ID]string{protover.Link: "1-32", 255: "32"}),
	} {
		d, _ := testDescriptor()
		d.Protocols = set
		d.Sign(k.Identity)
		b := d.Marshal()
		got, err := Parse(b)
		if err != nil {
			t.Fatalf("%v: %v", set, err)
		}
		if !got.Protocols.Equal(set) || got.Protocols.String() != set.String() {
			t.Fatalf("Protocols = %v, want %v", got.Protocols, set)
		}
		if !bytes.Equal(got.Marshal(), b) {
			t.Fatalf("%v: re-marshal differs", set)
		}
		// The set sits right after the bandwidth, in protover's wire form.
		at := bytes.Index(b, binary.BigEndian.AppendUint32(nil, d.Bandwidth)) + 4
		if !bytes.HasPrefix(b[at:], set.Marshal()) {
			t.Fatalf("%v: wire form not found after the bandwidth", set)
		}
	}
	if !testProtocols.Supports(protover.Exit, 1) {
		t.Fatal("test setup")
	}
}

// Extension entries this version does not know survive Parse and Marshal
// byte for byte, and the signature over them still verifies.
func TestUnknownExtensionsPreserved(t *testing.T) {
	d, k := testDescriptor()
	d.extensions = []extension{{0, nil}, {1, []byte{0xff}}, {0x1234, bytes.Repeat([]byte{0xab}, 300)}, {0xffff, []byte("last")}}
	d.Sign(k.Identity)
	b := d.Marshal()
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !sameFields(got, d) {
		t.Fatalf("extensions differ: %+v", got.extensions)
	}
	out := got.Marshal()
	if !bytes.Equal(out, b) {
		t.Fatalf("re-marshal differs:\n in %x\nout %x", b, out)
	}
	if _, err := Parse(out); err != nil {
		t.Fatalf("re-marshalled descriptor: %v", err)
	}
	// The values are copies, not views of the input.
	clear(b)
	if !bytes.Equal(got.extensions[3].value, []byte("last")) {
		t.Fatal("extension value aliases the parsed bytes")
	}
	// Dropping or changing an unknown entry breaks the signature.
	for name, es := range map[string][]extension{
		"dropped": d.extensions[1:],
		"changed": {{0, nil}, {1, []byte{0xfe}}, d.extensions[2], d.extensions[3]},
		"retyped": {{0, nil}, {2, []byte{0xff}}, d.extensions[2], d.extensions[3]},
	} {
		e := *d
		e.extensions = es
		if _, err := Parse(e.Marshal()); !errors.Is(err, ErrSignature) {
			t.Errorf("%s extension: error = %v, want ErrSignature", name, err)
		}
	}
}

// The wire form refuses extension types out of order or repeated, even
// when signed, and a count above the limit.
func TestExtensionOrder(t *testing.T) {
	d, k := testDescriptor()
	for _, tt := range []struct {
		name string
		es   []extension
		want string
	}{
		{"descending", []extension{{5, nil}, {4, nil}}, "type 4 follows type 5"},
		{"duplicate", []extension{{5, []byte{1}}, {5, []byte{1}}}, "type 5 appears twice"},
		{"duplicate after others", []extension{{1, nil}, {2, nil}, {2, nil}}, "type 2 appears twice"},
		{"too many", make([]extension, MaxExtensions+1), "65 extensions, at most 64"},
	} {
		e := *d
		e.extensions = tt.es
		if tt.name == "too many" {
			for i := range e.extensions {
				e.extensions[i].typ = uint16(i)
			}
		}
		e.Signature = k.Identity.Sign(signedMessage(e.marshalBody()))
		_, err := Parse(e.Marshal())
		if err == nil || !strings.HasPrefix(err.Error(), "descriptor: ") || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Parse error = %v, want %q", tt.name, err, tt.want)
		}
	}
	// A length that runs past the end is refused before reading.
	b := d.Marshal()
	// The last extension (type 0xfff0, empty) ends with its length field,
	// right before the publication time and the signature.
	at := len(b) - keys.SignatureSize - 8 - 2
	binary.BigEndian.PutUint16(b[at:], 0xffff)
	if _, err := Parse(b); err == nil || !strings.Contains(err.Error(), "truncated in extension 1") {
		t.Fatalf("overlong extension: %v", err)
	}
}
