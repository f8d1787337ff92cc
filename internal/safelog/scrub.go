package safelog

import (
	"errors"
	"net"
)

// Scrub returns err with the addresses that network errors print removed:
// its message keeps only the operation and the cause of the innermost
// *net.OpError ("dial: connection refused"), while errors.Is and errors.As
// still see the whole chain. With unsafe logging on, or when err holds no
// *net.OpError, it returns err unchanged.
func Scrub(err error) error {
	if err == nil || UnsafeLogging() {
		return err
	}
	var op *net.OpError
	if !errors.As(err, &op) {
		return err
	}
	msg := op.Op
	if op.Err != nil {
		msg += ": " + Scrub(op.Err).Error()
	}
	return &scrubbed{msg: msg, err: err}
}

type scrubbed struct {
	msg string
	err error
}

func (s *scrubbed) Error() string { return s.msg }
func (s *scrubbed) Unwrap() error { return s.err }
