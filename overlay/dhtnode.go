package overlay

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/apps/compute/manifest"
	"github.com/darkmatter/darkmatter/apps/names"
	"github.com/darkmatter/darkmatter/apps/sites"
	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/circuit/protover"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
	"github.com/darkmatter/darkmatter/overlay/dht"
	"github.com/darkmatter/darkmatter/overlay/linkmgr"
	"github.com/darkmatter/darkmatter/overlay/linkrpc"
	"github.com/darkmatter/darkmatter/overlay/onion"
)

// DefaultDHTMinAge is Config.DHTMinAge when zero: a relay stores DHT records
// only once this node has known it for a day (spec/dht.md §6).
const DefaultDHTMinAge = 24 * time.Hour

// ErrNoDHT is returned by the DHT methods of a node without a DHT (before
// Start).
var ErrNoDHT = errors.New("overlay: the DHT is not running")

// startDHT starts the node's DHT: relays serve it and call peers over
// links; clients only look up and store, through a circuit, so no DHT node
// learns their address.
func (n *Node) startDHT() error {
	self := dht.Contact{ID: n.NodeID()}
	if d := n.desc.Load(); d != nil && len(d.Addrs) > 0 {
		self.Addr = d.Addrs[0]
	}
	var tr dht.Transport = linkDHT{n}
	if !n.isRelay() || n.cfg.DHTViaCircuit {
		n.viaCirc = &dhtCircuits{n: n}
		tr = n.viaCirc
	}
	reg := dht.DefaultRegistry()
	if err := onion.RegisterTypes(reg); err != nil {
		return err
	}
	if err := manifest.Register(reg, n.cfg.Network); err != nil {
		return err
	}
	if err := names.Register(reg, n.cfg.NameDifficulty); err != nil {
		return err
	}
	if err := sites.Register(reg); err != nil {
		return err
	}
	if err := sites.RegisterHost(reg); err != nil {
		return err
	}
	n.names.setRegistry(reg)
	d, err := dht.New(dht.Config{
		Registry:        reg,
		Self:            self,
		Network:         n.cfg.Network,
		Transport:       tr,
		Server:          n.isRelay(),
		AllowSameSubnet: n.cfg.AllowSameSubnet,
		Eligible:        n.dhtEligible,
		Limits:          n.cfg.DHTLimits,
		Resolve:         n.dhtResolve,
		Logf:            n.logf.Printf,
	})
	if err != nil {
		return err
	}
	n.dhtMu.Lock()
	n.dht = d
	n.dhtMu.Unlock()
	n.seedDHT()
	return nil
}

// seedDHT gives the DHT every relay of the directory that serves it.
func (n *Node) seedDHT() int {
	d := n.getDHT()
	if d == nil {
		return 0
	}
	added := 0
	for _, r := range n.dir.List() {
		if c, ok := dhtContact(r); ok && c.ID != n.NodeID() && d.AddContact(c) {
			added++
		}
	}
	return added
}

func (n *Node) getDHT() *dht.DHT {
	n.dhtMu.Lock()
	defer n.dhtMu.Unlock()
	return n.dht
}

// dhtContact returns the DHT contact of a relay that serves the DHT.
func dhtContact(d *descriptor.Descriptor) (dht.Contact, bool) {
	if !d.Protocols.Supports(protover.DHT, 1) || len(d.Addrs) == 0 {
		return dht.Contact{}, false
	}
	return dht.Contact{ID: d.NodeID(), Addr: d.Addrs[0]}, true
}

// dhtResolve gives the DHT the address our directory holds for a relay.
func (n *Node) dhtResolve(id keys.NodeID) (string, bool) {
	d := n.dir.Get(id)
	if d == nil {
		return "", false
	}
	c, ok := dhtContact(d)
	return c.Addr, ok
}

// dhtEligible reports whether a relay may store records: it must serve the
// DHT and have been in our directory for Config.DHTMinAge.
func (n *Node) dhtEligible(c dht.Contact) bool {
	d := n.dir.Get(c.ID)
	if d == nil || !d.Protocols.Supports(protover.DHT, 1) {
		return false
	}
	if n.cfg.DHTMinAge < 0 {
		return true
	}
	info, ok := n.dir.Info(c.ID)
	return ok && time.Since(info.FirstSeen) >= n.cfg.DHTMinAge
}

// DHTPut stores a record on the DHT nodes closest to its key and keeps
// republishing it while the node runs; it returns how many nodes took it.
func (n *Node) DHTPut(ctx context.Context, r *dht.Record) (int, error) {
	d := n.getDHT()
	if d == nil {
		return 0, ErrNoDHT
	}
	return d.Put(ctx, r)
}

// DHTGet returns the verified records of type typ under key, the newest of
// each owner. A client asks through a circuit.
func (n *Node) DHTGet(ctx context.Context, typ uint16, key dht.Key) ([]*dht.Record, error) {
	d := n.getDHT()
	if d == nil {
		return nil, ErrNoDHT
	}
	return d.Get(ctx, typ, key)
}

// DHTStats returns the DHT's counters (zero before Start).
func (n *Node) DHTStats() dht.Stats {
	if d := n.getDHT(); d != nil {
		return d.Stats()
	}
	return dht.Stats{}
}

// linkDHT is the DHT's transport over the node's links.
type linkDHT struct{ n *Node }

func (t linkDHT) Call(ctx context.Context, to dht.Contact, req []byte) ([]byte, error) {
	return t.n.callDHT(ctx, to.ID, req)
}

// callDHT makes one DHT call to relay to over a link (dialling it if
// needed), or to our own DHT. The relay must be in the directory and serve
// the DHT, at an address that passes the extend rules: a peer's NODES
// answer cannot make us dial anywhere else.
func (n *Node) callDHT(ctx context.Context, to keys.NodeID, req []byte) ([]byte, error) {
	if to == n.NodeID() {
		d := n.getDHT()
		if d == nil || !n.isRelay() {
			return nil, errWillNotCall
		}
		if resp := d.HandleRequest(ctx, d.Self(), req); resp != nil {
			return resp, nil
		}
		return nil, errNoDHTAnswer
	}
	desc := n.dir.Get(to)
	if desc == nil || !desc.Protocols.Supports(protover.DHT, 1) {
		return nil, errWillNotCall
	}
	h, ok := n.hopOf(desc)
	if !ok || n.checkDialAddr(h.Addr) != "" {
		return nil, errWillNotCall
	}
	l, err := n.links.Channel(ctx, h.Identity, h.Link, h.Addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNoDHTAnswer, err)
	}
	if !l.PeerProtocols().Supports(protover.DHT, 1) {
		return nil, errWillNotCall
	}
	resp, err := n.rpc.Call(ctx, l, req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNoDHTAnswer, err)
	}
	return resp, nil
}

// rpcHandler answers the DHT requests peers send over links.
type rpcHandler struct{ n *Node }

func (h rpcHandler) ServeRPC(ctx context.Context, p linkrpc.Peer, req []byte) []byte {
	d := h.n.getDHT()
	l, ok := p.(*linkmgr.Link)
	if d == nil || !ok || !h.n.isRelay() {
		return nil
	}
	return d.HandleRequest(ctx, peerContact(l), req)
}

// peerContact names a link's peer for the DHT: a relay by its NodeID and
// the address its descriptor lists; any other peer by a hash of its source
// address, so its STOREs are rated per source.
func peerContact(l *linkmgr.Link) dht.Contact {
	if d := l.Descriptor(); d != nil {
		if c, ok := dhtContact(d); ok {
			return c
		}
	}
	return dht.Contact{ID: sha256.Sum256([]byte("darkmatter dht source\x00" + l.Source())), Addr: l.RemoteAddr().String()}
}

// dhtCircuits is a client's DHT transport: calls go through the last hop
// of a circuit (BEGIN_DHT), replaced when it dies or ages.
type dhtCircuits struct {
	n *Node

	mu    sync.Mutex
	cur   *circuitDHT
	built time.Time
}

// dhtCircuitLife is how long one circuit carries a client's DHT calls.
const dhtCircuitLife = 10 * time.Minute

func (t *dhtCircuits) Call(ctx context.Context, to dht.Contact, req []byte) ([]byte, error) {
	c, err := t.circuit(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", dht.ErrNotSent, err)
	}
	resp, err := c.callDHT(ctx, to.ID, req)
	if err != nil {
		select {
		case <-c.cc.Done(): // our circuit died, not the peer
			err = fmt.Errorf("%w: %w", dht.ErrNotSent, err)
		default:
		}
	}
	return resp, err
}

func (t *dhtCircuits) circuit(ctx context.Context) (*circuitDHT, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cur != nil {
		select {
		case <-t.cur.cc.Done():
		default:
			if time.Since(t.built) < dhtCircuitLife {
				return t.cur, nil
			}
		}
		old := t.cur
		t.cur = nil
		time.AfterFunc(dhtProxyTimeout, func() { // let calls in flight finish
			old.close()
			old.cc.Close()
		})
	}
	var err error
	for range 3 {
		var cc *circuit.ClientCirc
		if cc, err = t.n.mgr.Build(ctx); err != nil {
			continue
		}
		hops := cc.Hops()
		if !hops[len(hops)-1].Protocols.Supports(protover.DHT, 1) {
			cc.Close()
			err = errWillNotCall
			continue
		}
		t.cur, t.built = &circuitDHT{cc: cc}, time.Now()
		return t.cur, nil
	}
	return nil, fmt.Errorf("overlay: no circuit for DHT calls: %w", err)
}

func (t *dhtCircuits) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cur != nil {
		t.cur.close()
		t.cur.cc.Close()
		t.cur = nil
	}
}
