package overlay

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/circuit/exitpolicy"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/safelog"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
	"github.com/darkmatter/darkmatter/overlay/linkmgr"
)

// The plumbing between the node's layers lives on these unexported
// adapters, so that Node shows applications only what they use.

// linker gives the circuit switch links to relays this node chose itself:
// the first hop of its own circuits (circuit.Config.Linker).
type linker struct{ n *Node }

// Channel returns the preferred link to the relay, dialling it if needed.
func (k linker) Channel(ctx context.Context, identity keys.IdentityPublicKey, lk keys.LinkPublicKey, addr string) (circuit.Channel, error) {
	l, err := k.n.links.Channel(ctx, identity, lk, addr)
	if err != nil {
		if ctx.Err() == nil {
			k.n.dir.NoteReachable(identity.NodeID(), false)
		}
		return nil, err // not a typed nil in the interface
	}
	return l, nil
}

// extender gives the circuit switch links for peers' EXTENDs
// (circuit.Config.Extender): a relay extends only to relays it knows, at an
// address of their signed descriptor, never to itself, and never to a
// loopback, private or link-local address unless Config.AllowPrivateAddrs.
// Tor extends only to relays in its consensus; our directory is how a
// relay knows relays. spec/circuits.md (EXTEND) is normative.
type extender struct{ n *Node }

// Channel checks the extend rules, then returns the preferred link to the
// relay, dialling the address if there is none. A refusal wraps
// circuit.ErrExtendRefused and dials nothing.
func (x extender) Channel(ctx context.Context, identity keys.IdentityPublicKey, lk keys.LinkPublicKey, addr string) (circuit.Channel, error) {
	n := x.n
	if identity == n.keys.Identity.Public() || lk == n.keys.Link.Public() {
		return nil, n.refuseExtend(addr, "the relay itself")
	}
	d := n.dir.Get(identity.NodeID())
	switch {
	case d == nil:
		return nil, n.refuseExtend(addr, "a relay not in the directory")
	case d.Identity != identity || d.Link != lk:
		return nil, n.refuseExtend(addr, "a link key its descriptor does not list")
	}
	a, err := descriptor.NormalizeAddr(addr)
	if err != nil || !slices.Contains(d.Addrs, a) {
		return nil, n.refuseExtend(addr, "an address its descriptor does not list")
	}
	if why := n.checkDialAddr(a); why != "" {
		return nil, n.refuseExtend(addr, why)
	}
	l, err := n.links.Channel(ctx, identity, lk, a)
	if err != nil {
		return nil, err
	}
	return l, nil
}

func (n *Node) refuseExtend(addr, why string) error {
	n.extendRefused.Add(1)
	return fmt.Errorf("overlay: extend to %v: %s: %w", safelog.S(addr), why, circuit.ErrExtendRefused)
}

// checkDialAddr checks an address (from a descriptor, in the
// "scheme://host:port" form) this node would dial at a peer's request or
// on a directory's word: its host must be an IP address (a peer never
// makes us resolve a name), public unless Config.AllowPrivateAddrs, and
// not one of our own. It returns why not, or "".
func (n *Node) checkDialAddr(a string) string {
	_, hostport, err := descriptor.SplitAddr(a)
	if err != nil {
		return "a malformed address"
	}
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return "a malformed address"
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return "a host name"
	}
	if !n.cfg.AllowPrivateAddrs && exitpolicy.IsPrivate(ip) {
		return "a private, loopback or link-local address"
	}
	if n.isOwnAddr(a) {
		return "the relay's own address"
	}
	return ""
}

// isOwnAddr reports whether a ("scheme://host:port") is one of the
// addresses this relay listens on or advertises.
func (n *Node) isOwnAddr(a string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Contains(n.ownAddrs, a)
}

// linkEvents is the link manager's Handler: link-level cells go to the
// directory, and peers' HELLO descriptors into it.
type linkEvents Node

// LinkUp adds the peer's verified HELLO descriptor to the directory if the
// link comes from an address the descriptor lists (see announcedFrom).
func (e *linkEvents) LinkUp(l *linkmgr.Link) {
	(*Node)(e).maybePunch(l)
	d := l.Descriptor()
	if d == nil {
		return
	}
	if !announcedFrom(d, l.RemoteAddr()) && !(*Node)(e).reservedHere(d, l) {
		if (*Node)(e).relayedAtKnownHops(d) {
			// A relay behind NAT, reached through hop relays this node
			// knows: stored, not confirmed (nobody here saw a relay
			// splice to it), so never a guard.
			e.dir.AddFrom(d, l.Source())
			return
		}
		e.helloRefused.Add(1)
		return
	}
	// A relay that speaks for itself from an address it lists is
	// confirmed: it exists where it says, whoever introduced it.
	if ok, _ := e.dir.AddFrom(d, l.Source()); ok || e.dir.Get(d.NodeID()) != nil {
		e.dir.Confirm(d.NodeID())
		e.dir.NoteReachable(d.NodeID(), true)
		// The DHT learns the relay now, not at the next gossip round.
		if h := (*Node)(e).getDHT(); h != nil {
			if c, ok := dhtContact(d); ok {
				h.AddContact(c)
			}
		}
	}
}

// announcedFrom reports whether a HELLO descriptor may be stored from a
// link with that remote address: one of its addresses must have the link's
// IP, and none may have another IP of the same family. A peer can thus
// announce only itself, at the address it speaks from: it cannot make
// relays dial someone else's address by listing it (spec/descriptor.md §4).
func announcedFrom(d *descriptor.Descriptor, remote net.Addr) bool {
	from, ok := ipOf(remote)
	if !ok {
		return false
	}
	match := false
	for _, a := range d.Addrs {
		_, hostport, err := descriptor.SplitAddr(a)
		if err != nil {
			return false
		}
		host, _, err := net.SplitHostPort(hostport)
		if err != nil {
			return false
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return false // a host name cannot be checked
		}
		ip = ip.Unmap()
		switch {
		case ip == from:
			match = true
		case ip.Is4() == from.Is4():
			return false
		}
	}
	return match
}

// ipOf returns the IP address of a transport address ("ip:port").
func ipOf(a net.Addr) (netip.Addr, bool) {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.AddrPort().Addr().Unmap(), true
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap().WithZone(""), true
}

// LinkCell hands a circuit-0 cell to the DHT's calls (DHT) or the directory
// (DIR_GET, DIR_DESC, DIR_DONE, GOSSIP).
func (e *linkEvents) LinkCell(l *linkmgr.Link, c *cell.Cell) {
	switch c.Cmd() {
	case cell.CmdDHT:
		e.rpc.HandleCell(l, c)
		return
	case cell.CmdNAT:
		(*Node)(e).natCell(l, c)
		return
	}
	e.dir.HandleCell(l, c)
}

// LinkClosed ends a directory fetch or answer and the DHT calls on the
// link, so neither keeps anything for it.
func (e *linkEvents) LinkClosed(l *linkmgr.Link) {
	e.dir.PeerClosed(l)
	e.rpc.PeerClosed(l)
	(*Node)(e).natLinkClosed(l)
}
