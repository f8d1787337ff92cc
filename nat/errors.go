package nat

import "errors"

// Errors of this package.
var (
	// ErrClosed is returned by Serve when its socket was closed.
	ErrClosed = errors.New("nat: server closed")
	// ErrNoAnswer means no STUN server answered a probe in time.
	ErrNoAnswer = errors.New("nat: no STUN server answered")
	// ErrNoServers means Probe was given no servers.
	ErrNoServers = errors.New("nat: no STUN servers")
	// ErrPunchFailed means no punch packet from the peer arrived in time.
	ErrPunchFailed = errors.New("nat: hole punch failed")
	// ErrNoCandidates means a Punch was given no peer candidates.
	ErrNoCandidates = errors.New("nat: no candidates")
	// ErrMalformed means a candidate message, a signal message or a punch
	// packet could not be decoded.
	ErrMalformed = errors.New("nat: malformed message")
	// ErrTooManyCandidates means more than MaxCandidates addresses.
	ErrTooManyCandidates = errors.New("nat: too many candidates")
	// ErrProtocol means the peer sent a valid message out of turn or for
	// another session.
	ErrProtocol = errors.New("nat: coordination protocol violation")
	// ErrBadConfig means a ServerConfig or options value is unusable.
	ErrBadConfig = errors.New("nat: bad configuration")
)
