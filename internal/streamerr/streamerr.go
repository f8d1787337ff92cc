package streamerr

import (
	"errors"
	"fmt"
)

// Reason is the one-byte reason code of an END relay message.
type Reason uint8

// Reason codes. The numeric values are part of the wire format.
const (
	Done          Reason = 0  // clean close
	Misc          Reason = 1  // unspecified failure
	ResolveFailed Reason = 2  // the exit could not resolve the host name
	ConnRefused   Reason = 3  // the target refused the connection
	ExitPolicy    Reason = 4  // the exit policy rejects the target
	Destroyed     Reason = 5  // the circuit was destroyed
	Timeout       Reason = 6  // connecting to the target timed out
	Unreachable   Reason = 7  // network or host unreachable
	ProtocolError Reason = 8  // malformed relay message
	ResourceLimit Reason = 9  // the exit is out of resources
	NoExit        Reason = 10 // the client found no usable exit/circuit
	BadAddress    Reason = 11 // the target address is malformed
	Unsupported   Reason = 12 // the circuit end serves no streams of that kind
	Closed        Reason = 13 // closed both ways before the other side's END (an abort, like a TCP reset)
)

var names = map[Reason]string{
	Done: "done", Misc: "failed", ResolveFailed: "host name not resolved",
	ConnRefused: "connection refused", ExitPolicy: "rejected by exit policy",
	Destroyed: "circuit destroyed", Timeout: "connect timed out",
	Unreachable: "host unreachable", ProtocolError: "protocol error",
	ResourceLimit: "exit out of resources", NoExit: "no usable circuit",
	BadAddress: "bad target address", Unsupported: "stream kind not served here",
	Closed: "closed by the other end",
}

func (r Reason) String() string {
	if s, ok := names[r]; ok {
		return s
	}
	return fmt.Sprintf("reason %d", uint8(r))
}

// Error is a stream failure with its Reason.
type Error struct {
	Reason Reason
}

func (e *Error) Error() string { return "stream: " + e.Reason.String() }

// Is reports whether target is an *Error with the same Reason, so that
// errors.Is(err, streamerr.New(streamerr.ConnRefused)) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Reason == e.Reason
}

// New returns an *Error for r.
func New(r Reason) error { return &Error{Reason: r} }

// ReasonOf returns the Reason carried by err (or by an error it wraps,
// through Unwrap() error or Unwrap() []error, as errors.As looks), and
// Misc when err carries none.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return Misc
}
