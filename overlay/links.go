package overlay

import (
	"context"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/linkmgr"
)

// The plumbing between the node's layers lives on these unexported
// adapters, so that Node shows applications only what they use.

// linker gives the circuit switch the node's links (circuit.Linker).
type linker struct{ n *Node }

// Channel returns the preferred link to the relay, dialling it if needed.
func (k linker) Channel(ctx context.Context, identity keys.IdentityPublicKey, lk keys.LinkPublicKey, addr string) (circuit.Channel, error) {
	l, err := k.n.links.Channel(ctx, identity, lk, addr)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return l, nil
}

// linkEvents is the link manager's Handler: link-level cells go to the
// directory, and peers' HELLO descriptors into it.
type linkEvents Node

// LinkUp adds the peer's verified HELLO descriptor to the directory.
func (e *linkEvents) LinkUp(l *linkmgr.Link) {
	if d := l.Descriptor(); d != nil {
		e.dir.Add(d)
	}
}

// LinkCell hands a circuit-0 cell (DIR_GET, DIR_DESC, DIR_DONE) to the
// directory.
func (e *linkEvents) LinkCell(l *linkmgr.Link, c *cell.Cell) { e.dir.HandleCell(l, c) }

// LinkClosed ends a directory fetch waiting on the link.
func (e *linkEvents) LinkClosed(l *linkmgr.Link) { e.dir.PeerClosed(l) }
