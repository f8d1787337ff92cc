package streamerr

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestReasonOf(t *testing.T) {
	refused := New(ConnRefused)
	for _, tt := range []struct {
		err  error
		want Reason
	}{
		{nil, Misc},
		{errors.New("plain"), Misc},
		{refused, ConnRefused},
		{fmt.Errorf("dial: %w", refused), ConnRefused},
		{fmt.Errorf("a: %w", fmt.Errorf("b: %w", New(Timeout))), Timeout},
		{errors.Join(errors.New("first"), New(ExitPolicy)), ExitPolicy},
		{fmt.Errorf("%w and %w", errors.New("x"), New(Closed)), Closed},
	} {
		if got := ReasonOf(tt.err); got != tt.want {
			t.Errorf("ReasonOf(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
	if !errors.Is(fmt.Errorf("w: %w", refused), New(ConnRefused)) || errors.Is(refused, New(Timeout)) {
		t.Error("Is compares reasons wrongly")
	}
}

// Every reason up to the highest known one has a name, so that the
// proxies' tables, which are tested over all named reasons, cover them all.
func TestReasonNames(t *testing.T) {
	for r := Done; r <= Closed; r++ {
		if strings.HasPrefix(r.String(), "reason ") {
			t.Errorf("reason %d has no name", r)
		}
	}
	if got := Reason(200).String(); got != "reason 200" {
		t.Errorf("unknown reason prints %q", got)
	}
	if got := New(Timeout).Error(); got != "stream: connect timed out" {
		t.Errorf("Error() = %q", got)
	}
}
