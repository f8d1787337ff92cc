package specialname

import (
	"errors"
	"strings"
	"testing"

	"github.com/darkmatter/darkmatter/internal/streamerr"
)

func TestCheck(t *testing.T) {
	for _, tt := range []struct {
		host string
		want error
	}{
		{"abcdef.dark", ErrHiddenService},
		{"ABCDEF.DARK", ErrHiddenService},
		{"www.abcdef.Dark", ErrHiddenService},
		{"abcdef.dark.", ErrHiddenService},
		{"abcdef.dark..", ErrHiddenService},
		{"dark", ErrHiddenService},
		{"x..dark", ErrHiddenService},
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
		if streamerr.ReasonOf(err) != streamerr.Unreachable {
			t.Errorf("Check(%q): reason %v, want Unreachable", tt.host, streamerr.ReasonOf(err))
		}
		if !errors.Is(err, streamerr.New(streamerr.Unreachable)) {
			t.Errorf("Check(%q) does not match streamerr Unreachable", tt.host)
		}
		// The text names the rule, never the name's own labels.
		if first, _, ok := strings.Cut(tt.host, "."); ok && len(first) > 2 && first != "home" && Check(first) == nil &&
			strings.Contains(strings.ToLower(err.Error()), strings.ToLower(first)) {
			t.Errorf("Check(%q) = %q names the host", tt.host, err)
		}
	}
}

func TestHiddenServiceMessage(t *testing.T) {
	if !strings.Contains(ErrHiddenService.Error(), "hidden services") || !strings.Contains(ErrHiddenService.Error(), "not available yet") {
		t.Fatalf("ErrHiddenService says %q", ErrHiddenService)
	}
}

func BenchmarkCheck(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Check("www.example.com")
		Check("abcdef.dark")
	}
}
