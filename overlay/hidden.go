package overlay

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/circuit/protover"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/specialname"
	"github.com/darkmatter/darkmatter/overlay/dht"
	"github.com/darkmatter/darkmatter/overlay/onion"
)

// ServiceConfig configures a hidden service published by ListenService
// (onion.ServiceConfig; its Now and the circuits and DHT access come from
// the node).
type ServiceConfig = onion.ServiceConfig

// hidden is the node's hidden-service state: one client for the .dark
// addresses it dials, and the services it publishes.
type hidden struct {
	mu       sync.Mutex
	client   *onion.Client
	services []*onion.Service
	dhtTr    *dhtCircuits // a relay's circuit for hidden-service DHT requests (clients use viaCirc)
}

// hsEnv gives the onion package the node's circuits and DHT.
type hsEnv struct{ n *Node }

func (e hsEnv) Network() string { return e.n.cfg.Network }

func (e hsEnv) Logf(format string, args ...any) { e.n.logf.Printf(format, args...) }

// BuildTo builds a circuit ending at the relay id of the directory.
func (e hsEnv) BuildTo(ctx context.Context, id keys.NodeID) (*circuit.ClientCirc, error) {
	d := e.n.dir.Get(id)
	if d == nil {
		return nil, errors.New("overlay: relay not in the directory")
	}
	h, ok := e.n.hopOf(d)
	if !ok {
		return nil, errors.New("overlay: no transport reaches the relay")
	}
	return e.n.mgr.BuildTo(ctx, h)
}

// relaysWith returns the NodeIDs of the directory's relays that speak
// protocol id version 1, in random order, without this node.
func (e hsEnv) relaysWith(id protover.ID) []keys.NodeID {
	self := e.n.NodeID()
	var out []keys.NodeID
	for _, d := range e.n.dir.List() {
		if nid := d.Identity.NodeID(); nid != self && d.Protocols.Supports(id, 1) {
			if _, ok := e.n.hopOf(d); ok {
				out = append(out, nid)
			}
		}
	}
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func (e hsEnv) IntroCandidates() []keys.NodeID { return e.relaysWith(protover.Intro) }

// BuildRendezvous builds a circuit to a random relay that joins circuits.
func (e hsEnv) BuildRendezvous(ctx context.Context) (*circuit.ClientCirc, error) {
	var err error = errors.New("overlay: no relay joins circuits")
	for i, id := range e.relaysWith(protover.Joint) {
		if i == 3 || ctx.Err() != nil {
			break
		}
		var cc *circuit.ClientCirc
		if cc, err = e.BuildTo(ctx, id); err == nil {
			return cc, nil
		}
	}
	return nil, err
}

func (e hsEnv) transport() (*dht.DHT, *dhtCircuits, error) {
	d := e.n.getDHT()
	if d == nil {
		return nil, nil, ErrNoDHT
	}
	if e.n.viaCirc != nil {
		// A client (or a relay with DHTViaCircuit) already sends its DHT
		// requests through a circuit: one such circuit serves both.
		return d, e.n.viaCirc, nil
	}
	h := &e.n.hidden
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.dhtTr == nil {
		h.dhtTr = &dhtCircuits{n: e.n}
	}
	return d, h.dhtTr, nil
}

func (e hsEnv) Put(ctx context.Context, r *dht.Record) (int, error) {
	d, tr, err := e.transport()
	if err != nil {
		return 0, err
	}
	return d.PutVia(ctx, r, tr)
}

func (e hsEnv) Get(ctx context.Context, typ uint16, key dht.Key) ([]*dht.Record, error) {
	d, tr, err := e.transport()
	if err != nil {
		return nil, err
	}
	return d.GetVia(ctx, typ, key, tr)
}

// onionClient returns the node's hidden-service client.
func (n *Node) onionClient() *onion.Client {
	h := &n.hidden
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.client == nil {
		h.client = onion.NewClient(hsEnv{n}, onion.ClientConfig{AuthKeys: n.cfg.ClientAuthKeys, PeriodLength: n.cfg.HSPeriod})
	}
	return h.client
}

// dialHidden opens a stream to a key address: a hidden service, or a site
// (dialDark).
func (n *Node) dialHidden(ctx context.Context, host, port, isolation string) (net.Conn, error) {
	svc, err := specialname.Service(host)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadAddress, err)
	}
	return n.dialDark(ctx, svc, port, isolation)
}

// ListenService publishes a hidden service and returns it as a listener
// whose Addr is "<key>.dark:PORT". It returns once the descriptor is in
// the DHT. Closing the listener (or the node) withdraws the service.
func (n *Node) ListenService(ctx context.Context, cfg ServiceConfig) (*onion.Service, error) {
	if n.isClosed() {
		return nil, ErrClosed
	}
	if n.getDHT() == nil {
		return nil, ErrNoDHT
	}
	if cfg.PeriodLength == 0 {
		cfg.PeriodLength = n.cfg.HSPeriod
	}
	s, err := onion.NewService(ctx, hsEnv{n}, cfg)
	if err != nil {
		return nil, err
	}
	h := &n.hidden
	h.mu.Lock()
	if n.isClosed() {
		h.mu.Unlock()
		s.Close()
		return nil, ErrClosed
	}
	// Forget the services closed since (their listeners were closed).
	live := h.services[:0]
	for _, x := range h.services {
		select {
		case <-x.Done():
		default:
			live = append(live, x)
		}
	}
	h.services = append(live, s)
	h.mu.Unlock()
	return s, nil
}

// Listen publishes a hidden service, shaped like net.ListenConfig.Listen:
// network is "tcp" (or "dark"), and address is ":PORT" for a service
// under a fresh key that lives as long as the listener, or
// "<key>.dark:PORT" for the service key in Config.ServiceKey. Use
// ListenService for several ports, client authorisation and tuning.
func (n *Node) Listen(ctx context.Context, network, address string) (net.Listener, error) {
	switch network {
	case "tcp", "tcp4", "tcp6", "dark":
	default:
		return nil, fmt.Errorf("overlay: listen: network %q not supported", network)
	}
	host, ps, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("overlay: listen: %w", err)
	}
	port, err := strconv.ParseUint(ps, 10, 16)
	if err != nil || port == 0 {
		return nil, fmt.Errorf("overlay: listen: port %q", ps)
	}
	key := n.cfg.ServiceKey
	switch {
	case host == "":
		if key, err = keys.GenerateService(nil); err != nil {
			return nil, err
		}
	case key == nil:
		return nil, fmt.Errorf("overlay: listen on %s needs Config.ServiceKey", strings.ToLower(host))
	default:
		want, err := keys.ParseAddress(host)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadAddress, err)
		}
		if want != key.Public() {
			return nil, errors.New("overlay: listen: the address is not Config.ServiceKey's")
		}
	}
	return n.ListenService(ctx, ServiceConfig{Key: key, Ports: []uint16{uint16(port)}})
}

// closeHidden withdraws the node's services and closes its rendezvous
// circuits.
func (n *Node) closeHidden() {
	h := &n.hidden
	h.mu.Lock()
	services, client, tr := h.services, h.client, h.dhtTr
	h.services, h.client, h.dhtTr = nil, nil, nil
	h.mu.Unlock()
	for _, s := range services {
		s.Close()
	}
	if client != nil {
		client.Close()
	}
	if tr != nil {
		tr.close()
	}
}

// HiddenStats are a node's hidden-service counters: one entry per service
// it publishes, and its client's.
type HiddenStats struct {
	Services []onion.ServiceStats
	Client   onion.ClientStats
}

// HiddenStats returns the counters of the node's hidden services and of
// its hidden-service client.
func (n *Node) HiddenStats() HiddenStats {
	h := &n.hidden
	h.mu.Lock()
	services, client := slices.Clone(h.services), h.client
	h.mu.Unlock()
	var st HiddenStats
	for _, s := range services {
		select {
		case <-s.Done():
		default:
			st.Services = append(st.Services, s.Stats())
		}
	}
	if client != nil {
		st.Client = client.Stats()
	}
	return st
}

// Sum adds the counters of every service up, with the highest effort.
func (h HiddenStats) Sum() onion.ServiceStats {
	var sum onion.ServiceStats
	for _, s := range h.Services {
		sum.Intros += s.Intros
		sum.Published += s.Published
		sum.Introductions += s.Introductions
		sum.Rendezvous += s.Rendezvous
		sum.Dropped += s.Dropped
		sum.Replays += s.Replays
		sum.Streams += s.Streams
		sum.Effort = max(sum.Effort, s.Effort)
	}
	return sum
}
