package link

import (
	"errors"
	"fmt"
	"github.com/darkmatter/darkmatter/internal/safelog"
)

// Errors. Handshake and link failures wrap one of these, with more detail
// after a colon; test for them with errors.Is.
var (
	// ErrClosed is returned by Send after the link closed.
	ErrClosed = errors.New("link: closed")
	// ErrNetworkMismatch means the peers are configured with different
	// network names. Both sides report it.
	ErrNetworkMismatch = errors.New("link: peer is on a different network")
	// ErrHandshake means the Noise handshake failed: on the initiator
	// usually because the responder's static key was not the one expected,
	// on the responder because the first message did not decrypt.
	ErrHandshake = errors.New("link: handshake failed")
	// ErrVersion means the peer speaks a link protocol version we do not.
	ErrVersion = errors.New("link: unsupported link protocol version")
	// ErrProtocol means the peer broke the link protocol: a bad preamble,
	// frame or cell, or a message that failed authentication.
	ErrProtocol = errors.New("link: protocol error")
	// ErrQueueFull means Config.MaxQueue cells were already waiting to be
	// sent, so Send dropped the cell; the link stays open.
	ErrQueueFull = errors.New("link: send queue full")
	// ErrIdle means the peer sent nothing for Config.IdleTimeout.
	ErrIdle = errors.New("link: idle timeout")
	// ErrWriteTimeout means a write was blocked for Config.IdleTimeout:
	// the peer stopped reading.
	ErrWriteTimeout = errors.New("link: write timed out")
	// ErrPeerClosed means the peer closed the connection.
	ErrPeerClosed = errors.New("link: closed by peer")
)

func protoErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrProtocol}, args...)...)
}

// scrub drops the addresses a *net.OpError prints, so errors can be logged
// without them.
func scrub(err error) error { return safelog.Scrub(err) }
