package safelog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
)

const secret = "10.1.2.3:4444"

// withUnsafe sets the process-wide switch for one test and restores it.
// Tests that use it must not run in parallel.
func withUnsafe(t *testing.T, on bool) {
	t.Helper()
	old := UnsafeLogging()
	SetUnsafeLogging(on)
	t.Cleanup(func() { SetUnsafeLogging(old) })
}

// allVerbs is every verb fmt knows, with some flags, plus two it does not.
var allVerbs = []string{
	"%v", "%+v", "%#v", "%T", "%%%v", "%s", "%q", "%#q", "%+q", "%x", "%X",
	"% x", "%#x", "%d", "%+d", "%b", "%o", "%O", "%c", "%U", "%#U", "%e",
	"%E", "%f", "%F", "%g", "%G", "%t", "%p", "%#p", "%w", "%8v", "%-8s|",
	"%.2s", "%08.3f", "%[1]v", "%z", "%!",
}

// secrets are values of many kinds that must never leak.
var secrets = []any{
	secret,
	[]byte(secret),
	[4]byte{10, 1, 2, 3},
	uint64(0xdeadbeefcafe),
	struct{ Host string }{secret},
	&struct{ Host string }{secret},
	map[string]string{"addr": secret},
	errors.New(secret),
	fmt.Stringer(stringer(secret)),
}

type stringer string

func (s stringer) String() string { return string(s) }

// needles are the forms in which the secrets print without redaction: every
// verb applied to every raw secret, skipping outputs that are fmt's own
// "bad verb" text or too short to be telling.
var needles = func() []string {
	var out []string
	for _, v := range secrets {
		for _, verb := range allVerbs {
			if verb == "%T" {
				continue
			}
			s := strings.TrimSpace(fmt.Sprintf(verb, v))
			if strings.HasPrefix(s, "%!") || len(s) < 6 {
				continue
			}
			out = append(out, s)
		}
	}
	// Pieces that appear inside containers, where fmt drops the outer quotes
	// or brackets of the whole value.
	return append(out, "10.1.2.3", "4444", "49 48 46 49", "31302e31", "31302E31",
		"0x31, 0x30, 0x2e", "deadbeef", "DEADBEEF", "244837814094590")
}()

// leaks reports whether out shows any form of the secret values.
func leaks(out string) bool {
	for _, n := range needles {
		if strings.Contains(out, n) {
			return true
		}
	}
	return false
}

func TestUnsafeLoggingDefaultOff(t *testing.T) {
	if UnsafeLogging() {
		t.Fatal("UnsafeLogging() = true by default")
	}
}

func TestRedactionEveryVerb(t *testing.T) {
	withUnsafe(t, false)
	for _, v := range secrets {
		s := S(v)
		for _, verb := range allVerbs {
			out := fmt.Sprintf(verb, s)
			if leaks(out) {
				t.Errorf("Sprintf(%q, S(%T)) = %q leaks", verb, v, out)
			}
			// A pointer to a Sensitive has the same methods.
			out = fmt.Sprintf(verb, &s)
			if leaks(out) {
				t.Errorf("Sprintf(%q, &S(%T)) = %q leaks", verb, v, out)
			}
		}
	}
}

func TestRedactionScrubbedText(t *testing.T) {
	withUnsafe(t, false)
	s := S(secret)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d", "%8v"} {
		if got := fmt.Sprintf(verb, s); got != Scrubbed {
			t.Errorf("Sprintf(%q) = %q, want %q", verb, got, Scrubbed)
		}
	}
	if got := s.String(); got != Scrubbed {
		t.Errorf("String() = %q", got)
	}
	if got := s.GoString(); got != Scrubbed {
		t.Errorf("GoString() = %q", got)
	}
	if got := fmt.Sprint(s); got != Scrubbed {
		t.Errorf("Sprint = %q", got)
	}
	if got := fmt.Sprintln(s, s); got != Scrubbed+" "+Scrubbed+"\n" {
		t.Errorf("Sprintln = %q", got)
	}
}

// TestRedactionInsideContainers covers a Sensitive nested in structs (exported
// and unexported fields, printed with %v, %+v and %#v), pointers, slices,
// maps and errors.
func TestRedactionInsideContainers(t *testing.T) {
	withUnsafe(t, false)
	type hop struct {
		Addr   Sensitive
		id     Sensitive
		Name   string
		nested struct{ key Sensitive }
	}
	h := hop{Addr: S(secret), id: S(uint64(0xdeadbeefcafe)), Name: "guard"}
	h.nested.key = S([]byte(secret))
	values := []any{
		h, &h, []hop{h}, map[string]hop{"k": h}, map[Sensitive]int{S(secret): 1},
		[]Sensitive{S(secret)}, []any{S(secret)}, struct{ any }{S(secret)},
		fmt.Errorf("dial %v: %w", S(secret), errors.New("refused")),
	}
	for _, v := range values {
		for _, verb := range allVerbs {
			out := fmt.Sprintf(verb, v)
			if leaks(out) {
				t.Errorf("Sprintf(%q, %T) = %q leaks", verb, v, out)
			}
		}
	}
	// The exported field prints as the scrubbed marker and the plain field stays.
	if got := fmt.Sprintf("%+v", h); !strings.Contains(got, "Addr:"+Scrubbed) || !strings.Contains(got, "Name:guard") {
		t.Errorf("%%+v = %q", got)
	}
}

// TestRedactionOnlyProtectsItself documents the limit: a raw value next to a
// Sensitive is printed as it is.
func TestRedactionOnlyProtectsItself(t *testing.T) {
	withUnsafe(t, false)
	type peer struct {
		Addr Sensitive
		Raw  string
	}
	out := fmt.Sprintf("%+v", peer{Addr: S(secret), Raw: secret})
	if !strings.Contains(out, "Addr:"+Scrubbed) {
		t.Errorf("%q: wrapped field not scrubbed", out)
	}
	if !strings.Contains(out, "Raw:"+secret) {
		t.Errorf("%q: expected the unwrapped field to be printed", out)
	}
}

func TestUnsafeLoggingShowsValue(t *testing.T) {
	withUnsafe(t, true)
	if !UnsafeLogging() {
		t.Fatal("UnsafeLogging() = false after SetUnsafeLogging(true)")
	}
	tests := []struct {
		format string
		v      any
		want   string
	}{
		{"%v", secret, secret},
		{"%s", secret, secret},
		{"%q", secret, `"` + secret + `"`},
		{"%x", "ab", "6162"},
		{"% X", []byte{1, 0xab}, "01 AB"},
		{"%d", 42, "42"},
		{"%05d", 42, "00042"},
		{"%-6s|", "ab", "ab    |"},
		{"%.1f", 3.14159, "3.1"},
		{"%+v", struct{ A int }{1}, "{A:1}"},
		{"%#v", struct{ A int }{1}, "struct { A int }{A:1}"},
		{"%v", nil, "<nil>"},
	}
	for _, tt := range tests {
		if got := fmt.Sprintf(tt.format, S(tt.v)); got != tt.want {
			t.Errorf("Sprintf(%q, S(%#v)) = %q, want %q", tt.format, tt.v, got, tt.want)
		}
	}
	if got := S(secret).String(); got != secret {
		t.Errorf("String() = %q", got)
	}
	if got := fmt.Sprint(Sensitive{}); got != "<nil>" {
		t.Errorf("zero Sensitive = %q", got)
	}
	SetUnsafeLogging(false)
	if got := S(secret).String(); got != Scrubbed {
		t.Errorf("after switching back: String() = %q", got)
	}
}

func TestZeroSensitive(t *testing.T) {
	withUnsafe(t, false)
	var s Sensitive
	if got := fmt.Sprintf("%v %s %#v", s, s, s); got != Scrubbed+" "+Scrubbed+" "+Scrubbed {
		t.Errorf("zero value = %q", got)
	}
}

func TestJSONAndSlog(t *testing.T) {
	withUnsafe(t, false)
	b, err := json.Marshal(struct {
		Addr Sensitive
		Keys []Sensitive
	}{S(secret), []Sensitive{S(secret)}})
	if err != nil {
		t.Fatal(err)
	}
	if leaks(string(b)) || !strings.Contains(string(b), Scrubbed) {
		t.Errorf("json = %s", b)
	}

	var buf bytes.Buffer
	for _, h := range []slog.Handler{
		slog.NewTextHandler(&buf, nil),
		slog.NewJSONHandler(&buf, nil),
	} {
		slog.New(h).Info("extend", "hop", S(secret), "group", slog.GroupValue(slog.Any("k", S(secret))))
	}
	if leaks(buf.String()) || strings.Count(buf.String(), Scrubbed) != 4 {
		t.Errorf("slog output = %s", buf.String())
	}

	SetUnsafeLogging(true)
	buf.Reset()
	slog.New(slog.NewTextHandler(&buf, nil)).Info("extend", "hop", S(secret))
	if !strings.Contains(buf.String(), secret) {
		t.Errorf("unsafe slog output = %s", buf.String())
	}
}

func TestLogfWithSensitive(t *testing.T) {
	withUnsafe(t, false)
	var r recorder
	Logf(r.logf).Prefix("circuit: ").Printf("extend to %v (%x) failed", S(secret), S([]byte(secret)))
	want := "circuit: extend to " + Scrubbed + " (" + Scrubbed + ") failed"
	if got := r.all(); len(got) != 1 || got[0] != want {
		t.Fatalf("lines = %q, want %q", got, want)
	}
}

var pointerRE = regexp.MustCompile(`0x[0-9a-f]+`)

// TestRedactionIndependentOfValue checks the strongest form of the property:
// for every verb and container, the output with one secret equals the output
// with another (pointer addresses aside), so nothing about the value leaks,
// whatever its encoding.
func TestRedactionIndependentOfValue(t *testing.T) {
	withUnsafe(t, false)
	type inner struct{ key Sensitive }
	type hop struct {
		Addr   Sensitive
		id     Sensitive
		Ptr    *Sensitive
		nested inner
		list   []Sensitive
		m      map[string]Sensitive
	}
	build := func(v any) []any {
		s := S(v)
		h := hop{Addr: s, id: s, Ptr: &s, nested: inner{s}, list: []Sensitive{s}, m: map[string]Sensitive{"k": s}}
		return []any{s, &s, h, &h, []hop{h}, struct{ any }{s}, [1]any{&h}}
	}
	a := build("10.1.2.3:4444")
	b := build([]byte{0xff, 0, 1})
	for i := range a {
		for _, verb := range allVerbs {
			switch verb {
			case "%x", "%X", "% x", "%#x", "%d", "%+d", "%b", "%o", "%O", "%#q", "%#U", "%p", "%#p":
				// With these verbs fmt prints the closure's address in
				// a form pointerRE does not match; TestRedactionEveryVerb
				// and TestRedactionInsideContainers cover them.
				continue
			}
			outA := pointerRE.ReplaceAllString(fmt.Sprintf(verb, a[i]), "0xPTR")
			outB := pointerRE.ReplaceAllString(fmt.Sprintf(verb, b[i]), "0xPTR")
			if outA != outB {
				t.Errorf("Sprintf(%q, %T) depends on the value:\n  %s\n  %s", verb, a[i], outA, outB)
			}
		}
	}
}
