package nat

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"
)

// DefaultCoordinateTimeout bounds Coordinate when ctx has no deadline.
const DefaultCoordinateTimeout = 10 * time.Second

// Signal message types (spec/nat.md §6).
const (
	msgConnect = 1
	msgSync    = 2
)

// Signal is the existing path (typically relayed through a circuit hop)
// that carries the coordination messages of a hole punch. Each Send is one
// message; Recv returns the next message in order. Both fail once the path
// is closed. Implementations deliver messages reliably and in order, and
// return promptly when ctx ends.
type Signal interface {
	Send(ctx context.Context, msg []byte) error
	Recv(ctx context.Context) ([]byte, error)
}

// Coordinate runs the DCUtR-style exchange over sig and returns the peer's
// candidates and the moment to start punching (spec/nat.md §6):
//
//	initiator                         responder
//	CONNECT(local, nonce N)  ──────▶
//	                         ◀──────  CONNECT(local, nonce N)
//	RTT = time since CONNECT sent
//	SYNC(N, RTT)             ──────▶
//	start = now + RTT/2               start = now (on SYNC)
//
// The initiator picks N (local.Nonce, or a random one when it is zero);
// the responder's local.Nonce is ignored and N echoed. The returned peer
// carries N in Nonce and the measured RTT, ready for Punch. When ctx has no
// deadline, DefaultCoordinateTimeout applies.
func Coordinate(ctx context.Context, sig Signal, local Candidates, initiator bool) (peer Candidates, start time.Time, err error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultCoordinateTimeout)
		defer cancel()
	}
	if initiator {
		peer, start, err = coordinateInitiator(ctx, sig, local)
	} else {
		peer, start, err = coordinateResponder(ctx, sig, local)
	}
	if err != nil {
		return Candidates{}, time.Time{}, fmt.Errorf("nat: coordinate: %w", err)
	}
	return peer, start, nil
}

func coordinateInitiator(ctx context.Context, sig Signal, local Candidates) (Candidates, time.Time, error) {
	if local.Nonce == ([NonceSize]byte{}) {
		_, _ = rand.Read(local.Nonce[:])
	}
	local.RTT = 0
	t0 := time.Now()
	if err := send(ctx, sig, msgConnect, local); err != nil {
		return Candidates{}, time.Time{}, err
	}
	peer, err := recv(ctx, sig, msgConnect, local.Nonce)
	if err != nil {
		return Candidates{}, time.Time{}, err
	}
	rtt := time.Since(t0)
	if err := send(ctx, sig, msgSync, Candidates{Nonce: local.Nonce, RTT: rtt}); err != nil {
		return Candidates{}, time.Time{}, err
	}
	peer.RTT = rtt
	return peer, time.Now().Add(rtt / 2), nil
}

func coordinateResponder(ctx context.Context, sig Signal, local Candidates) (Candidates, time.Time, error) {
	peer, err := recv(ctx, sig, msgConnect, [NonceSize]byte{})
	if err != nil {
		return Candidates{}, time.Time{}, err
	}
	local.Nonce, local.RTT = peer.Nonce, 0
	if err := send(ctx, sig, msgConnect, local); err != nil {
		return Candidates{}, time.Time{}, err
	}
	sync, err := recv(ctx, sig, msgSync, peer.Nonce)
	if err != nil {
		return Candidates{}, time.Time{}, err
	}
	if len(sync.Addrs) != 0 {
		return Candidates{}, time.Time{}, fmt.Errorf("%w: SYNC with addresses", ErrProtocol)
	}
	peer.RTT = sync.RTT
	return peer, time.Now(), nil
}

func send(ctx context.Context, sig Signal, typ byte, c Candidates) error {
	msg, err := c.AppendBinary([]byte{typ})
	if err != nil {
		return err
	}
	return sig.Send(ctx, msg)
}

// recv reads the next message, which must be of type typ and, unless
// nonce is zero, carry nonce.
func recv(ctx context.Context, sig Signal, typ byte, nonce [NonceSize]byte) (Candidates, error) {
	msg, err := sig.Recv(ctx)
	if err != nil {
		return Candidates{}, err
	}
	c, gotType, err := ParseSignal(msg)
	if err != nil {
		return Candidates{}, err
	}
	if gotType != typ {
		return Candidates{}, fmt.Errorf("%w: message type %d, want %d", ErrProtocol, gotType, typ)
	}
	if nonce != ([NonceSize]byte{}) && c.Nonce != nonce {
		return Candidates{}, fmt.Errorf("%w: nonce of another session", ErrProtocol)
	}
	return c, nil
}

// ParseSignal decodes one coordination message: a type byte (1 CONNECT,
// 2 SYNC) followed by a Candidates encoding.
func ParseSignal(msg []byte) (c Candidates, typ byte, err error) {
	if len(msg) < 1 || (msg[0] != msgConnect && msg[0] != msgSync) {
		return Candidates{}, 0, fmt.Errorf("%w: signal message type", ErrMalformed)
	}
	if err := c.UnmarshalBinary(msg[1:]); err != nil {
		return Candidates{}, 0, err
	}
	return c, msg[0], nil
}
