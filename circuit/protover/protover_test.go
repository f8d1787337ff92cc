package protover

import (
	"bytes"
	"testing"
)

func TestSetRoundTrip(t *testing.T) {
	s := New(map[ID]string{Link: "1", Relay: "1-2", Exit: "1", 200: "3-5"})
	if got, want := s.String(), "Link=1 Relay=1-2 Exit=1 P200=3-5"; got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
	b := s.Marshal()
	want := []byte{4, 1, 0, 0, 0, 1, 2, 0, 0, 0, 3, 3, 0, 0, 0, 1, 200, 0, 0, 0, 0x1c}
	if !bytes.Equal(b, want) {
		t.Fatalf("Marshal = %x, want %x", b, want)
	}
	p, n, err := Parse(append(b, 0xff))
	if err != nil || n != len(b) || !p.Equal(s) {
		t.Fatalf("Parse = %v, %d, %v", p, n, err)
	}
	q, err := ParseString(s.String())
	if err != nil || !q.Equal(s) {
		t.Fatalf("ParseString = %v, %v", q, err)
	}
}

func TestNegotiation(t *testing.T) {
	a := New(map[ID]string{Link: "1-3", Relay: "1-2"})
	b := New(map[ID]string{Link: "1-2", Relay: "1", Joint: "1"})
	if v := a.Highest(b, Link); v != 2 {
		t.Errorf("Highest(Link) = %d, want 2", v)
	}
	if v := a.Highest(b, Joint); v != 0 {
		t.Errorf("Highest(Joint) = %d, want 0", v)
	}
	if !b.Supports(Joint, 1) || a.Supports(Joint, 1) || a.Max(Link) != 3 {
		t.Error("Supports/Max wrong")
	}
}

func TestParseRejects(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":     {},
		"truncated": {1, 1, 0, 0},
		"zero mask": {1, 1, 0, 0, 0, 0},
		"unordered": {2, 2, 0, 0, 0, 1, 1, 0, 0, 0, 1},
		"duplicate": {2, 1, 0, 0, 0, 1, 1, 0, 0, 0, 2},
		"too many":  {65},
	} {
		if _, _, err := Parse(b); err == nil {
			t.Errorf("%s: Parse accepted %x", name, b)
		}
	}
	for _, s := range []string{"Link", "Link=0", "Link=33", "Link=3-1", "Nope=1"} {
		if _, err := ParseString(s); err == nil {
			t.Errorf("ParseString accepted %q", s)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(New(map[ID]string{Link: "1", Relay: "1-2"}).Marshal())
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, n, err := Parse(b)
		if err != nil {
			return
		}
		if out := s.Marshal(); !bytes.Equal(out, b[:n]) {
			t.Fatalf("re-encoding differs: %x vs %x", out, b[:n])
		}
		if q, err := ParseString(s.String()); err != nil || !q.Equal(s) {
			t.Fatalf("string round trip: %v %v", q, err)
		}
	})
}

// Every registered protocol has a name that String writes and ParseString
// reads back (a new ID missing from names would print as "P<id>").
func TestNamedProtocols(t *testing.T) {
	for id, want := range map[ID]string{Link: "Link", Relay: "Relay", Exit: "Exit", Dir: "Dir", Joint: "Joint",
		LinkAES: "LinkAES", DHT: "DHT", Intro: "Intro", Compute: "Compute"} {
		s := New(map[ID]string{id: "1"})
		if got := s.String(); got != want+"=1" {
			t.Errorf("ID %d: String = %q, want %q", id, got, want+"=1")
		}
		q, err := ParseString(want + "=1")
		if err != nil || !q.Equal(s) || !q.Supports(id, 1) {
			t.Errorf("ParseString(%q) = %v, %v", want+"=1", q, err)
		}
	}
	if Compute != 9 {
		t.Fatalf("Compute = %d, want 9 (spec/protover.md §2)", Compute)
	}
}
