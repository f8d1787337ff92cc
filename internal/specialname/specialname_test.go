package specialname

import (
	"errors"
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
		{"abcdef.dark", ErrAddressLength},
		{"ABCDEF.DARK", ErrAddressLength},
		{"www.abcdef.Dark", ErrAddressLength},
		{"abcdef.dark.", ErrAddressLength},
		{"abcdef.dark..", ErrAddressLength},
		{"dark", ErrAddressLength},
		{"x..dark", ErrAddressLength},
		{validLabel + ".www.dark", ErrAddressLength},
		{validAddr + ".dark", ErrAddressLength},
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

// TestMistypedAddress checks each class of mistyped .dark address: the
// error, its text (which names the class and never the address), its
// crypto/keys cause and its stream reason.
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
		{validLabel[1:] + ".dark", ErrAddressLength, keys.ErrAddressLength, "mistyped .dark address: wrong length"},
		{validLabel + "a.dark", ErrAddressLength, keys.ErrAddressLength, "mistyped .dark address: wrong length"},
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
	}
}
