package overlay

import (
	"strings"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
	"github.com/darkmatter/darkmatter/overlay/transport"
	quictr "github.com/darkmatter/darkmatter/overlay/transport/quic"
)

// What the circuit manager's path selection learns of the directory's
// relays, and which of a relay's addresses a hop uses.

// relayInfos adapts the directory for path selection.
func (n *Node) relayInfos() []circuit.RelayInfo {
	es := n.dir.Entries()
	out := make([]circuit.RelayInfo, 0, len(es))
	for _, e := range es {
		d := e.Desc
		h, ok := n.hopOf(d)
		if !ok {
			continue
		}
		ri := circuit.RelayInfo{Hop: h, Bandwidth: d.Bandwidth, Family: d.Family(), FirstSeen: e.Info.FirstSeen,
			Reliable: e.Info.Confirmed && e.Info.Failures <= e.Info.Successes+2}
		if p := d.Policy(); p != nil && p.IsExit() {
			ri.Policy = p
		}
		out = append(out, ri)
	}
	return out
}

// schemeRank orders a relay's addresses by transport: 0 for TCP (and
// any other direct transport), 1 for QUIC, 2 for a relayed address.
func schemeRank(a string) int {
	switch {
	case strings.HasPrefix(a, quictr.Scheme+transport.SchemeSep):
		return 1
	case strings.HasPrefix(a, SchemeRelay+transport.SchemeSep):
		return 2
	}
	return 0
}

// hopOf returns what a client needs to extend to the relay d describes,
// with the first of its addresses that one of our transports carries;
// false if there is none.
func (n *Node) hopOf(d *descriptor.Descriptor) (circuit.Hop, bool) {
	// An address with an IP address first: a relay extends only to
	// those (spec/descriptor.md §4.2); then TCP before QUIC, which carries
	// less on the same hosts (spec/links-quic.md), and a relayed address
	// last.
	for _, names := range []bool{false, true} {
		for rank := range 3 {
			for _, a := range d.Addrs {
				if hostIsName(a) != names || schemeRank(a) != rank || !n.links.Supports(a) {
					continue
				}
				// Descriptors are immutable once parsed, so the hop can point
				// at the descriptor's 1184-byte KEM key instead of copying it
				// for every relay each time paths are chosen.
				return circuit.Hop{
					Identity:  d.Identity,
					Link:      d.Link,
					Addr:      a,
					Onion:     d.Onion,
					KEM:       &d.KEM,
					Protocols: d.Protocols,
				}, true
			}
		}
	}
	return circuit.Hop{}, false
}
