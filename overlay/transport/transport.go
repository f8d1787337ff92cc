package transport

import (
	"context"
	"net"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// Transport opens and accepts reliable byte streams.
//
// Implementations are safe for concurrent use. Dial honours ctx for
// cancellation and deadline; the conns and listeners they return follow the
// net.Conn and net.Listener contracts (Close is idempotent or reports
// net.ErrClosed, Accept after Close fails with an error matching
// net.ErrClosed, deadlines fail with os.ErrDeadlineExceeded).
type Transport interface {
	// Dial connects to addr ("host:port").
	Dial(ctx context.Context, addr string) (net.Conn, error)
	// Listen listens on addr ("host:port"; port 0 picks a free one, and
	// the listener's Addr reports it).
	Listen(addr string) (net.Listener, error)
}

// PeerDialer is a Transport that must know whom it connects to, not only
// where: a relayed link (overlay/relaylink) asks the relay at addr for the
// node with static link key peer. The link manager calls DialPeer instead
// of Dial when a transport has it.
type PeerDialer interface {
	DialPeer(ctx context.Context, addr string, peer keys.LinkPublicKey) (net.Conn, error)
}
