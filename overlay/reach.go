package overlay

import (
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/nat"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
	"github.com/darkmatter/darkmatter/overlay/transport"
	quictr "github.com/darkmatter/darkmatter/overlay/transport/quic"
)

// Reachability (spec/nat.md §2, spec/descriptor.md §1.4): a node asks the
// STUN servers of a few relays it knows which address they see it at. If
// that is one of its own interface addresses it is public; otherwise it is
// behind a NAT, whose mapping and filtering the probe classifies. A relay
// puts the result in its descriptor; status shows it.

const (
	// ReachInterval is how often a node probes its reachability again.
	ReachInterval = 30 * time.Minute
	// reachServers is how many relays a probe asks.
	reachServers = 4
	// reachTimeout bounds one probe.
	reachTimeout = 3 * time.Second
)

// reachState is the node's latest reachability.
type reachState struct {
	mu     sync.Mutex
	reach  descriptor.Reach
	report *nat.Report
	at     time.Time
}

// Reachability returns the node's latest reachability, the probe's report
// (nil before the first answer) and when it was taken.
func (n *Node) Reachability() (descriptor.Reach, *nat.Report, time.Time) {
	s := &n.reach
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reach, s.report, s.at
}

// reachLoop probes once the directory lists another relay, then every
// ReachInterval, until the node closes. A relay whose reachability changed
// republishes its descriptor.
func (n *Node) reachLoop() {
	wait := time.Second
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(wait):
		}
		changed, ok := n.probeReach(n.ctx)
		wait = ReachInterval
		if !ok {
			wait = min(10*time.Second, ReachInterval) // nobody to ask yet
		}
		if changed && n.isRelay() {
			if err := n.republish(); err != nil {
				n.logf.Printf("overlay: republish after a reachability change: %v", err)
			}
		}
	}
}

// probeReach runs one probe; ok is false when no relay answered.
func (n *Node) probeReach(ctx context.Context) (changed, ok bool) {
	servers := n.stunServers()
	if len(servers) == 0 {
		return false, false
	}
	ctx, cancel := context.WithTimeout(ctx, reachTimeout+time.Second)
	defer cancel()
	// A node that listens for QUIC probes from that socket (its STUN
	// responses have their own view of it): the mapping peers and
	// punches meet. Others probe from a fresh socket.
	n.mu.Lock()
	sock := n.udpSock
	n.mu.Unlock()
	var r *nat.Report
	var err error
	if sock != nil {
		sock.mu.Lock()
		r, err = nat.Probe(ctx, sock.d.Responses(), servers, nat.ProbeOptions{Timeout: reachTimeout})
		sock.mu.Unlock()
	} else {
		pc, lerr := net.ListenPacket("udp", ":0")
		if lerr != nil {
			return false, false
		}
		defer pc.Close()
		r, err = nat.Probe(ctx, pc, servers, nat.ProbeOptions{Timeout: reachTimeout})
	}
	if err != nil {
		return false, false
	}
	var mapped netip.AddrPort
	for _, m := range r.Mapped {
		if m.IsValid() {
			mapped = m
			break
		}
	}
	if !mapped.IsValid() {
		return false, false
	}
	if sock != nil {
		n.noteMapped(mapped)
	}
	reach := descriptor.Reach{Status: descriptor.ReachNAT, Mapping: behavior(r.Mapping), Filtering: behavior(r.Filtering)}
	if isLocalIP(mapped.Addr()) {
		reach = descriptor.Reach{Status: descriptor.ReachPublic}
	}
	s := &n.reach
	s.mu.Lock()
	// The first answer rides the next regular republication (the relay
	// had nothing to correct); a change after that is published at once.
	changed = !s.at.IsZero() && s.reach != reach
	s.reach, s.report, s.at = reach, r, time.Now()
	s.mu.Unlock()
	return changed, true
}

// stunServers picks up to reachServers relays of the directory, other
// than this node, and returns the UDP twins of their link addresses with
// an IP address (a relay answers STUN there, spec/nat.md §2).
func (n *Node) stunServers() []netip.AddrPort {
	self := n.NodeID()
	var out []netip.AddrPort
	relays := n.dir.List()
	rand.Shuffle(len(relays), func(i, j int) { relays[i], relays[j] = relays[j], relays[i] })
	for _, d := range relays {
		if d.Identity.NodeID() == self {
			continue
		}
		for _, a := range d.Addrs {
			// Real sockets only: a test network's memnet addresses are
			// not UDP endpoints.
			scheme, hp, _ := strings.Cut(a, transport.SchemeSep)
			if scheme != transport.SchemeTCP && scheme != quictr.Scheme {
				continue
			}
			if ap, err := netip.ParseAddrPort(hp); err == nil && !ap.Addr().IsUnspecified() {
				out = append(out, ap)
				break
			}
		}
		if len(out) == reachServers {
			break
		}
	}
	return out
}

// isLocalIP reports whether ip is an address of one of this machine's
// interfaces.
func isLocalIP(ip netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Unmap() == ip.Unmap() {
			return true
		}
	}
	return false
}

// behavior maps a probe's classification to the descriptor's.
func behavior(b nat.Behavior) uint8 {
	switch b {
	case nat.EndpointIndependent:
		return descriptor.BehaviorEndpointIndependent
	case nat.AddressDependent:
		return descriptor.BehaviorAddressDependent
	case nat.AddressAndPortDependent:
		return descriptor.BehaviorAddressPortDepend
	}
	return descriptor.BehaviorUnknown
}

// reachDescriptor sets d's reachability entry once a probe has answered.
func (n *Node) reachDescriptor(d *descriptor.Descriptor) error {
	r, _, at := n.Reachability()
	if at.IsZero() {
		return nil
	}
	return d.SetReach(r)
}
