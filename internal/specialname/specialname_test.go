package specialname

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/proxyserve/proxytest"
	"github.com/darkmatter/darkmatter/internal/streamerr"
)

func TestCheck(t *testing.T) {
	for _, tt := range []struct {
		host string
		want error
	}{
		{validAddr, ErrHiddenService},
		{strings.ToUpper(validAddr), ErrHiddenService},
		{"www." + validLabel + ".Dark", ErrHiddenService},
		{validAddr + ".", ErrHiddenService},
		{validAddr + "..", ErrHiddenService},
		{"www." + setLabelByte(0, '-') + ".dark", ErrAddressEncoding},
		{"a_b." + validAddr, ErrHiddenService},
		{"abcdef.dark", ErrName},
		{"ABCDEF.DARK", ErrName},
		{"www.abcdef.Dark", ErrName},
		{"abcdef.dark.", ErrName},
		{"abcdef.dark..", ErrName},
		{"blog.alice.dark", ErrName},
		{"BLOG.Alice.dark.", ErrName},
		{validLabel[1:] + ".dark", ErrName},
		{validLabel + "a.dark", ErrName},
		{"a.b.c.d.dark", ErrName},
		{"a_b.dark", ErrBadName},
		{"dark", ErrBadName},
		{"DARK.", ErrBadName},
		{".dark", ErrBadName},
		{"..dark", ErrBadName},
		{"x..dark", ErrBadName},
		{".x.dark", ErrBadName},
		{"a.b.c.d.e.dark", ErrBadName},
		{strings.Repeat("a", 64) + ".dark", ErrBadName},
		{"-ab.dark", ErrBadName},
		{"ab-.dark", ErrBadName},
		{"xn--bcher-kva.dark", ErrBadName},
		{"café.dark", ErrBadName},
		{validLabel + ".www.dark", ErrBadName},
		{validAddr + ".dark", ErrBadName},
		{"x.dark.dark", ErrBadName},
		{"expyuzz4wqqyqhjn.onion", ErrForeignName},
		{"x.ONION.", ErrForeignName},
		{"gns.alt", ErrForeignName},
		{"localhost", ErrLocalName},
		{"LocalHost.", ErrLocalName},
		{"app.localhost", ErrLocalName},
		{"printer.local", ErrLocalName},
		{"nas.home.arpa", ErrLocalName},
		{"home.arpa", ErrLocalName},
		{"NAS.Home.ARPA.", ErrLocalName},
		{"jira.corp.internal", ErrLocalName},

		{"example.com", nil},
		{"example.invalid", nil},
		{"dark.example.com", nil},
		{"darkmatter.org", nil},
		{"xdark", nil},
		{"x.darknet", nil},
		{"onion.example", nil},
		{"localhost.example.com", nil},
		{"localhost2", nil},
		{"in-addr.arpa", nil},
		{"nothome.arpa", nil},
		{"home.arpa.example", nil},
		{"127.0.0.1", nil},
		{"::1", nil},
		{"2001:db8::1", nil},
		{"", nil},
		{".", nil},
	} {
		err := Check(tt.host)
		if err != tt.want {
			t.Errorf("Check(%q) = %v, want %v", tt.host, err, tt.want)
			continue
		}
		if err == nil {
			continue
		}
		want := streamerr.Unreachable
		if IsMistyped(err) {
			want = streamerr.BadAddress
		}
		if streamerr.ReasonOf(err) != want {
			t.Errorf("Check(%q): reason %v, want %v", tt.host, streamerr.ReasonOf(err), want)
		}
		if !errors.Is(err, streamerr.New(want)) {
			t.Errorf("Check(%q) does not match streamerr %v", tt.host, want)
		}
		// The text names the rule, never the name's own labels.
		if first, _, ok := strings.Cut(tt.host, "."); ok && len(first) > 2 && first != "home" && Check(first) == nil &&
			strings.Contains(strings.ToLower(err.Error()), strings.ToLower(first)) {
			t.Errorf("Check(%q) = %q names the host", tt.host, err)
		}
	}
}

func TestHiddenServiceMessage(t *testing.T) {
	if got := ErrHiddenService.Error(); got != "hidden service address" {
		t.Fatalf("ErrHiddenService says %q", got)
	}
	if IsMistyped(ErrHiddenService) || ErrHiddenService.Mistyped() {
		t.Fatal("ErrHiddenService is not a mistyped address")
	}
}

// validKey is a service key; validAddr its address; validLabel the
// address without ".dark".
var (
	validKey   = keys.ServiceFromSeed([32]byte{9}).Public()
	validAddr  = validKey.Address()
	validLabel = strings.TrimSuffix(validAddr, ".dark")
)

// setLabelByte returns validLabel with byte i replaced by c.
func setLabelByte(i int, c byte) string {
	b := []byte(validLabel)
	b[i] = c
	return string(b)
}

// TestMistypedAddress checks each class of mistyped .dark address (a
// label of 56 bytes before .dark): the error, its text (which names the
// class and never the address), its crypto/keys cause and its stream
// reason.
func TestMistypedAddress(t *testing.T) {
	// The last character is the low 5 bits of the version byte.
	wrongVersion := setLabelByte(55, 'c') // version 2; version 1 ends in 'b'
	// Changing the first character changes the key, so the checksum.
	wrongChecksum := setLabelByte(0, validLabel[0]^1)
	if validLabel[0]^1 < 'a' || validLabel[0]^1 > 'z' {
		wrongChecksum = setLabelByte(0, 'a'+(validLabel[0]-'a'+1)%26)
	}
	for _, tt := range []struct {
		host  string
		want  *Error
		cause error
		text  string
	}{
		{setLabelByte(3, '1') + ".dark", ErrAddressEncoding, keys.ErrAddressEncoding, "mistyped .dark address: a character is not base32"},
		{setLabelByte(3, '-') + ".DARK", ErrAddressEncoding, keys.ErrAddressEncoding, "mistyped .dark address: a character is not base32"},
		{wrongVersion + ".dark", ErrAddressVersion, keys.ErrAddressVersion, "mistyped .dark address: unknown address version"},
		{wrongChecksum + ".dark", ErrAddressChecksum, keys.ErrAddressChecksum, "mistyped .dark address: bad checksum"},
		{keyless + ".dark", ErrAddressKey, keys.ErrAddressKey, "mistyped .dark address: it does not hold a valid service key"},
	} {
		err := Check(tt.host)
		if err != tt.want {
			t.Errorf("Check(%q) = %v, want %v", tt.host, err, tt.want)
			continue
		}
		if !IsMistyped(err) || !errors.Is(err, tt.cause) || errors.Is(err, ErrHiddenService) {
			t.Errorf("Check(%q) = %v: IsMistyped %v, cause %v", tt.host, err, IsMistyped(err), errors.Is(err, tt.cause))
		}
		if !strings.HasPrefix(err.Error(), tt.text) || strings.Contains(strings.ToLower(err.Error()), validLabel[4:20]) {
			t.Errorf("Check(%q) says %q, want it to start %q", tt.host, err, tt.text)
		}
		if streamerr.ReasonOf(err) != streamerr.BadAddress {
			t.Errorf("Check(%q): reason %v, want BadAddress", tt.host, streamerr.ReasonOf(err))
		}
	}
}

// A host under .dark whose last label before .dark does not have 56
// bytes is a name (spec/names.md §1); Name returns it in canonical form,
// and a name that breaks a rule is mistyped, without a crypto/keys cause.
func TestNames(t *testing.T) {
	for host, want := range map[string]string{
		"blog.alice.dark":                      "blog.alice",
		"BLOG.Alice.dark.":                     "blog.alice",
		"blog.alice.DARK..":                    "blog.alice",
		"a-1.b.c.d.dark":                       "a-1.b.c.d",
		validLabel[1:] + ".dark":               validLabel[1:],
		strings.ToUpper(validLabel) + "A.dark": validLabel + "a",
		strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61) + ".dark": strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61),
	} {
		if err := Check(host); err != ErrName {
			t.Errorf("Check(%q) = %v, want ErrName", host, err)
		}
		if got, err := Name(host); got != want || err != nil {
			t.Errorf("Name(%q) = %q, %v, want %q", host, got, err, want)
		}
	}
	for host, want := range map[string]error{
		strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 62) + ".dark": ErrBadName, // 254 bytes
		"a_b.dark":         ErrBadName,
		"dark":             ErrBadName,
		"example.com":      ErrBadName,
		"localhost":        ErrLocalName,
		validAddr:          ErrHiddenService,
		"www." + validAddr: ErrHiddenService,
		setLabelByte(0, validLabel[0]^1) + ".dark": ErrAddressChecksum,
	} {
		if got, err := Name(host); got != "" || err != want {
			t.Errorf("Name(%q) = %q, %v, want %v", host, got, err, want)
		}
	}
	if !IsMistyped(ErrBadName) || errors.Is(ErrBadName, keys.ErrAddressLength) || streamerr.ReasonOf(ErrBadName) != streamerr.BadAddress {
		t.Error("ErrBadName is not a mistyped name with reason BadAddress")
	}
	if !strings.HasPrefix(ErrBadName.Error(), "mistyped .dark name: ") {
		t.Errorf("ErrBadName says %q", ErrBadName)
	}
	for _, e := range []*Error{ErrName, ErrNameNotFound} {
		if e.Mistyped() || streamerr.ReasonOf(e) != streamerr.Unreachable {
			t.Errorf("%v: mistyped %v, reason %v; want Unreachable", e, e.Mistyped(), streamerr.ReasonOf(e))
		}
	}
	if got := ErrNameNotFound.Error(); got != "name not registered" {
		t.Errorf("ErrNameNotFound says %q", got)
	}
}

// The names of spec/vectors/names.json: each valid one, written under
// .dark, is ErrName and Name gives its canonical form; Name refuses each
// invalid one.
func TestNameVectors(t *testing.T) {
	b, err := os.ReadFile("../../spec/vectors/names.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Names []struct{ Input, Canonical string }
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Names) == 0 {
		t.Fatal("no name vectors")
	}
	for _, n := range v.Names {
		host := n.Input
		if _, last := cutLast(strings.TrimSuffix(host, ".")); !isDark(last) {
			host += ".dark"
		}
		got, err := Name(host)
		switch {
		case n.Canonical != "" && (got != n.Canonical || err != nil):
			t.Errorf("Name(%q) = %q, %v, want %q", host, got, err, n.Canonical)
		case n.Canonical == "" && err == nil:
			t.Errorf("Name(%q) = %q, want an error", host, got)
		}
	}
}

// keyless is a label with a valid version and checksum around the
// identity point, which is no service key.
var keyless = func() string {
	_, mistyped := proxytest.DarkHosts()
	return strings.TrimSuffix(mistyped["key"], ".dark")
}()

func BenchmarkCheck(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Check("www.example.com")
		Check("abcdef.dark")
		Check("blog.alice.dark")
		Check(validAddr)
	}
}
