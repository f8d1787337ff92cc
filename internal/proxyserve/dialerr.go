package proxyserve

import (
	"context"
	"errors"

	"github.com/darkmatter/darkmatter/internal/hserr"
	"github.com/darkmatter/darkmatter/internal/specialname"
	"github.com/darkmatter/darkmatter/internal/streamerr"
)

// DialFailure describes an error from Dial in a few words that hold no
// address (dial errors may quote the target): the rule that refused a
// special name (a mistyped .dark address or name) or that a .dark name
// is not registered, why a hidden service was not reached,
// "connect timed out" when the dial timeout passed, "canceled" when the
// Server closed, and otherwise the streamerr reason the error carries
// ("connection refused", "failed", ...). Front ends use it in log lines
// and in what they answer the client.
func DialFailure(err error) string {
	var name *specialname.Error
	switch {
	case errors.As(err, &name):
		return name.Error()
	case hserr.Of(err) != nil:
		return hserr.Of(err).Error()
	case errors.Is(err, context.DeadlineExceeded):
		return streamerr.Timeout.String()
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return streamerr.ReasonOf(err).String()
}
