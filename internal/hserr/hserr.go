package hserr

import "errors"

// Error is one reason a hidden service could not be reached.
type Error struct {
	code byte
	why  string
}

func (e *Error) Error() string { return e.why }

// SOCKS returns the extended SOCKS5 reply code for e.
func (e *Error) SOCKS() byte { return e.code }

// The reasons, with Tor's extended SOCKS5 reply codes.
var (
	DescriptorNotFound = &Error{0xF0, "hidden service descriptor not found"}
	DescriptorInvalid  = &Error{0xF1, "hidden service descriptor is invalid"}
	IntroFailed        = &Error{0xF2, "hidden service introduction failed"}
	RendezvousFailed   = &Error{0xF3, "hidden service rendezvous failed"}
	ClientAuthMissing  = &Error{0xF4, "not authorised: the hidden service requires a client key"}
	ClientAuthWrong    = &Error{0xF5, "not authorised: the hidden service does not accept this client key"}
	IntroTimeout       = &Error{0xF7, "hidden service did not come to the rendezvous in time"}
)

// Of returns the reason err carries, or nil.
func Of(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// NotAuthorised reports whether err is a refused client authorisation.
func NotAuthorised(err error) bool {
	e := Of(err)
	return e == ClientAuthMissing || e == ClientAuthWrong
}
