package memnet

import "syscall"

// Errors returned by memnet. Each wraps the errno a real socket would give,
// so callers can test for it the same way with TCP and memnet.
var (
	// ErrConnRefused: nothing listens at the dialled address.
	ErrConnRefused error = &errnoError{"memnet: connection refused", syscall.ECONNREFUSED}
	// ErrBrokenPipe: a Write after the peer closed its end.
	ErrBrokenPipe error = &errnoError{"memnet: broken pipe", syscall.EPIPE}
	// ErrAddrInUse: Listen on a port that is taken, or no ephemeral port left.
	ErrAddrInUse error = &errnoError{"memnet: address already in use", syscall.EADDRINUSE}
	// ErrAddrNotAvailable: Listen on an IP that is not the host's own, or Dial
	// to the unspecified address.
	ErrAddrNotAvailable error = &errnoError{"memnet: cannot assign requested address", syscall.EADDRNOTAVAIL}
)

// errnoError is a memnet error that unwraps to the matching errno.
type errnoError struct {
	msg   string
	errno syscall.Errno
}

func (e *errnoError) Error() string { return e.msg }
func (e *errnoError) Unwrap() error { return e.errno }
