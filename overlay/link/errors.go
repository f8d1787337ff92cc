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
	// ErrVersion means the peer speaks a link protocol version we do not:
	// an unknown preamble version, suite or flag, or HELLOs without a
	// Link version in common.
	ErrVersion = errors.New("link: unsupported link protocol version")
	// ErrSuiteRejected means the responder has no hardware AES and asked
	// us to use ChaChaPoly instead of the AESGCM we proposed (reject
	// reason 4). The conn is closed; dial a new one and call Dial again
	// with a copy of the Config whose Suite is SuiteChaChaPoly and
	// SuiteRetry true, once. Connect does that. An Accept that sent such
	// a reject also returns it.
	ErrSuiteRejected = errors.New("link: peer asked for the ChaChaPoly suite")
	// ErrDowngrade means someone tried to talk the link down from AESGCM
	// to ChaChaPoly: a "use ChaChaPoly" reject from a peer whose
	// descriptor says it prefers AES (Config.PeerPrefersAES), or, on a
	// responder with hardware AES, a retry it never asked for. It comes
	// wrapped together with ErrHandshake.
	ErrDowngrade = errors.New("link: cipher suite downgrade refused")
	// ErrProtocol means the peer broke the link protocol: a bad preamble,
	// frame or cell, or a message that failed authentication.
	ErrProtocol = errors.New("link: protocol error")
	// ErrQueueFull means Send dropped the cell because a bound on queued
	// cells left no room for it: its circuit's (Config.MaxCircuitQueue),
	// or the link's (Config.MaxQueue) or the node's (Config.Budget) when
	// the circuit held the oldest queued cell. The link stays open; the
	// circuit cannot continue.
	ErrQueueFull = errors.New("link: send queue full")
	// ErrStalled means a queued cell waited Config.StallTimeout to be
	// written: the peer stopped reading, or reads far too slowly.
	ErrStalled = errors.New("link: send queue stalled")
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
