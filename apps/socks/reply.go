package socks

import (
	"context"
	"errors"

	"github.com/darkmatter/darkmatter/internal/hserr"
	"github.com/darkmatter/darkmatter/internal/specialname"
	"github.com/darkmatter/darkmatter/internal/streamerr"
)

// ReplyCode returns the SOCKS5 reply code for an error from
// Dialer.DialStream, following the table in the package documentation. A nil
// error gives ReplySucceeded.
func ReplyCode(err error) byte {
	if err == nil {
		return ReplySucceeded
	}
	if specialname.IsMistyped(err) {
		return ReplyHSBadAddress
	}
	if e := hserr.Of(err); e != nil {
		return e.SOCKS()
	}
	// A name nobody registered is answered like a hidden service whose
	// descriptor is not found: the user learns the name does not exist.
	if errors.Is(err, specialname.ErrHiddenService) || errors.Is(err, specialname.ErrNameNotFound) {
		return ReplyHSDescNotFound
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ReplyTTLExpired
	}
	switch streamerr.ReasonOf(err) {
	case streamerr.ExitPolicy:
		return ReplyNotAllowed
	case streamerr.Unreachable, streamerr.ResolveFailed:
		return ReplyHostUnreachable
	case streamerr.ConnRefused:
		return ReplyConnectionRefused
	case streamerr.Timeout:
		return ReplyTTLExpired
	default:
		return ReplyGeneralFailure
	}
}
