package overlay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/circuit/exitpolicy"
	"github.com/darkmatter/darkmatter/circuit/protover"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/safelog"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
	"github.com/darkmatter/darkmatter/overlay/dir"
	"github.com/darkmatter/darkmatter/overlay/link"
	"github.com/darkmatter/darkmatter/overlay/linkmgr"
	"github.com/darkmatter/darkmatter/overlay/transport"
)

// Config configures a Node. The zero value is a client on the default
// network using TCP; it still needs Bootstrap entries to reach anything.
type Config struct {
	// Network is the network name (default "darkmatter").
	Network string
	// Transports carry links by address scheme ("tcp", later "quic";
	// memnet under "mem" in tests). Nil means TCP only.
	Transports transport.Registry
	// Listen, if not empty, makes the node a relay listening on these
	// addresses ("tcp://host:port", or a bare "host:port" for tcp), one
	// transport each or several on one.
	Listen []string
	// Advertise are the link addresses put in the descriptor (default:
	// the listeners' addresses).
	Advertise []string
	// Keys are the node's keys (default: fresh keys in memory).
	Keys *keys.NodeKeys
	// Exit, if non-nil, makes a relay an exit with this configuration.
	Exit *circuit.ExitConfig
	// Bootstrap lists relays to contact first.
	Bootstrap []descriptor.Bootstrap
	// PathLen is the client's circuit length (default 3).
	PathLen int
	// AllowSameSubnet lets a path use several relays of one /16 (needed on
	// a loopback test network).
	AllowSameSubnet bool
	// Bandwidth is advertised in the descriptor (bytes/s).
	Bandwidth uint32
	// KeepAlive and IdleTimeout tune links (link package defaults).
	KeepAlive, IdleTimeout time.Duration
	// DirRefresh is how often a client refetches the directory (default 5 min).
	DirRefresh time.Duration
	// Progress, if set, receives bootstrap progress (0..100) and a message.
	Progress func(percent int, msg string)
	// Logf receives debug logs; nil is silent. Addresses and keys are
	// logged only through safelog.S.
	Logf safelog.Logf
}

// Node is a darkmatter node: client, relay or both. Its methods are safe
// for concurrent use.
type Node struct {
	cfg   Config
	keys  *keys.NodeKeys
	desc  *descriptor.Descriptor // nil for clients; set by Start
	sw    *circuit.Switch
	mgr   *circuit.Manager
	dir   *dir.Directory
	links *linkmgr.Manager
	logf  safelog.Logf

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// mu guards the following.
	mu        sync.Mutex
	listeners []net.Listener
	closed    bool
}

var (
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("overlay: node closed")
	// ErrNotAvailable is returned by Listen: hidden services are not
	// available yet.
	ErrNotAvailable = errors.New("overlay: hidden services are not available yet")
)

// New returns a Node; Start brings it up.
func New(cfg Config) (*Node, error) {
	if cfg.Network == "" {
		cfg.Network = link.DefaultNetwork
	}
	if cfg.Transports == nil {
		cfg.Transports = transport.Registry{transport.SchemeTCP: &transport.TCP{}}
	}
	if cfg.DirRefresh <= 0 {
		cfg.DirRefresh = 5 * time.Minute
	}
	k := cfg.Keys
	if k == nil {
		var err error
		if k, err = keys.GenerateNodeKeys(nil); err != nil {
			return nil, err
		}
	}
	n := &Node{
		cfg:  cfg,
		keys: k,
		dir:  dir.New(dir.Config{Network: cfg.Network}),
		logf: cfg.Logf,
	}
	scfg := circuit.Config{Network: cfg.Network, Linker: linker{n}, Logf: cfg.Logf}
	if n.isRelay() {
		scfg.Onion, scfg.KEM = k.Onion, k.KEM
		scfg.Exit = cfg.Exit
		scfg.Handlers = map[circuit.StreamKind]circuit.StreamHandler{circuit.KindDir: n.dir}
	}
	var err error
	if n.sw, err = circuit.NewSwitch(scfg); err != nil {
		return nil, err
	}
	lcfg := linkmgr.Config{
		Link: link.Config{
			Network:     cfg.Network,
			KeepAlive:   cfg.KeepAlive,
			IdleTimeout: cfg.IdleTimeout,
		},
		Transports:  cfg.Transports,
		Circuits:    n.sw,
		Handler:     (*linkEvents)(n),
		Descriptors: n.dir,
		Logf:        cfg.Logf,
	}
	if n.isRelay() {
		// A client uses a fresh key per link so its links cannot be
		// linked to each other.
		lcfg.Link.Static = k.Link
		lcfg.Link.Protocols = n.relayProtocols()
	}
	if n.links, err = linkmgr.New(lcfg); err != nil {
		n.sw.Close()
		return nil, err
	}
	n.mgr, err = circuit.NewManager(circuit.ManagerConfig{
		Switch:          n.sw,
		Relays:          n.relayInfos,
		PathLen:         cfg.PathLen,
		AllowSameSubnet: cfg.AllowSameSubnet,
		Logf:            cfg.Logf,
	})
	if err != nil {
		n.links.Close()
		n.sw.Close()
		return nil, err
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	return n, nil
}

func (n *Node) isRelay() bool { return len(n.cfg.Listen) > 0 }

// Start listens (relays), announces the node to its bootstrap relays and
// fetches their directories. With no bootstrap relays it returns at once.
func (n *Node) Start(ctx context.Context) error {
	if n.isRelay() {
		if err := n.listen(); err != nil {
			return err
		}
	}
	n.progress(5, "starting")
	if len(n.cfg.Bootstrap) == 0 {
		return nil
	}
	if err := n.fetchDirectory(ctx); err != nil {
		return err
	}
	n.goFunc(n.refreshLoop)
	return nil
}

// listen binds every Listen address, signs the descriptor that names them
// and only then accepts links, so every peer gets the descriptor in HELLO.
func (n *Node) listen() error {
	var lns []net.Listener
	var addrs []transport.Addr
	fail := func(err error) error {
		for _, ln := range lns {
			ln.Close()
		}
		return err
	}
	for _, a := range n.cfg.Listen {
		t, pa, err := n.cfg.Transports.Lookup(a)
		if err != nil {
			return fail(fmt.Errorf("overlay: listen: %w", err))
		}
		ln, err := t.Listen(pa.HostPort)
		if err != nil {
			return fail(fmt.Errorf("overlay: listen: %w", err))
		}
		lns = append(lns, ln)
		addrs = append(addrs, transport.Addr{Scheme: pa.Scheme, HostPort: ln.Addr().String()})
	}
	hello, err := n.makeDescriptor(addrs)
	if err != nil {
		return fail(err)
	}
	n.links.SetHello(hello)
	n.mu.Lock()
	n.listeners = append(n.listeners, lns...)
	n.mu.Unlock()
	for i, ln := range lns {
		if err := n.links.Serve(ln, addrs[i].Scheme); err != nil {
			return fail(err)
		}
	}
	return nil
}

// makeDescriptor signs the relay's descriptor, adds it to the directory
// and returns its wire form, the HELLO payload.
func (n *Node) makeDescriptor(listening []transport.Addr) ([]byte, error) {
	var addrs []string
	if len(n.cfg.Advertise) > 0 {
		addrs = n.cfg.Advertise
	} else {
		for _, a := range listening {
			addrs = append(addrs, a.String())
		}
	}
	pol := exitpolicy.RejectAll()
	if n.cfg.Exit != nil {
		pol = n.cfg.Exit.Policy
		if pol == nil {
			pol = exitpolicy.Default()
		}
	}
	now := time.Now()
	d := &descriptor.Descriptor{
		Network:      n.cfg.Network,
		Link:         n.keys.Link.Public(),
		Onion:        n.keys.Onion.Public(),
		OnionExpires: now.Add(7 * 24 * time.Hour),
		KEM:          *n.keys.KEM.Public(),
		Addrs:        addrs,
		ExitPolicy:   pol.String(),
		Bandwidth:    n.cfg.Bandwidth,
		Protocols:    link.Protocols(n.relayProtocols()),
		Published:    now,
	}
	d.Sign(n.keys.Identity)
	b := d.Marshal()
	parsed, err := descriptor.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("overlay: own descriptor: %w", err)
	}
	n.desc = parsed
	n.dir.Add(parsed)
	return b, nil
}

// relayProtocols are the subprotocols a relay speaks above its links
// (spec/protover.md); the link layer adds its own (Link, and LinkAES with
// hardware AES) in HELLO and, through link.Protocols, in the descriptor.
func (n *Node) relayProtocols() protover.Set {
	p := map[protover.ID]string{protover.Relay: "1-2", protover.Dir: "1-2", protover.Joint: "1"}
	if n.cfg.Exit != nil {
		p[protover.Exit] = "1"
	}
	return protover.New(p)
}

// Descriptor returns the relay's signed descriptor (nil for a client).
func (n *Node) Descriptor() *descriptor.Descriptor { return n.desc }

// Bootstrap returns the "ID@HOST:PORT" string others use to reach this relay.
func (n *Node) Bootstrap() descriptor.Bootstrap {
	if n.desc == nil {
		return descriptor.Bootstrap{}
	}
	return n.desc.Bootstrap()
}

// NodeID returns the node's ID.
func (n *Node) NodeID() keys.NodeID { return n.keys.Identity.Public().NodeID() }

// Addr returns the first listener's address, without a scheme (nil for a
// client).
func (n *Node) Addr() net.Addr {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.listeners) == 0 {
		return nil
	}
	return n.listeners[0].Addr()
}

// Relays returns the descriptors the node knows.
func (n *Node) Relays() []*descriptor.Descriptor { return n.dir.List() }

// Links returns the number of open links.
func (n *Node) Links() int { return n.links.Len() }

// CircuitEnds returns the circuit ends registered in the switch.
func (n *Node) CircuitEnds() int { return n.sw.Circuits() }

// ClientCircuits returns the client circuits open for streams.
func (n *Node) ClientCircuits() int { return n.mgr.Circuits() }

// Manager exposes the circuit manager (measurements, preemptive builds).
func (n *Node) Manager() *circuit.Manager { return n.mgr }

// DialStream opens a stream to target ("host:port"; a host name is resolved
// by the exit, never here) through a circuit shared only with streams of the
// same isolation key.
func (n *Node) DialStream(ctx context.Context, target, isolation string) (net.Conn, error) {
	if n.isClosed() {
		return nil, ErrClosed
	}
	return n.mgr.DialStream(ctx, target, isolation)
}

// Dial connects to address through a circuit, shaped like
// net.Dialer.DialContext: network is "tcp", "tcp4" or "tcp6", and address
// is "host:port" (the exit resolves host names, never this node). It uses
// the default isolation key; DialStream takes another.
func (n *Node) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("overlay: network %q not supported", network)
	}
	return n.DialStream(ctx, address, "")
}

// Listen will accept streams for a hidden service, shaped like
// net.ListenConfig.Listen. Hidden services are not available yet: it
// returns an error matching ErrNotAvailable.
func (n *Node) Listen(ctx context.Context, network, address string) (net.Listener, error) {
	if n.isClosed() {
		return nil, ErrClosed
	}
	return nil, fmt.Errorf("overlay: listen %s: %w", network, ErrNotAvailable)
}

// Ready builds a first circuit (to any exit) so the next stream usually
// starts at once, reporting progress like Tor's "Bootstrapped 100%".
func (n *Node) Ready(ctx context.Context) error {
	n.progress(80, "building a circuit")
	if err := n.mgr.Preempt(ctx); err != nil {
		return fmt.Errorf("overlay: first circuit: %w", err)
	}
	n.progress(100, "done")
	return nil
}

func (n *Node) progress(p int, msg string) {
	if n.cfg.Progress != nil {
		n.cfg.Progress(p, msg)
	}
}

func (n *Node) isClosed() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.closed
}

func (n *Node) goFunc(f func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}

// Close shuts the node down: circuits, links and listeners; it waits for
// the node's goroutines. Close can be called more than once.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.mu.Unlock()
	n.cancel()
	n.mgr.Close()
	n.sw.Close()
	n.links.Close()
	n.wg.Wait()
	return nil
}

// relayInfos adapts the directory for path selection.
func (n *Node) relayInfos() []circuit.RelayInfo {
	ds := n.dir.List()
	out := make([]circuit.RelayInfo, 0, len(ds))
	for _, d := range ds {
		h, ok := n.hopOf(d)
		if !ok {
			continue
		}
		ri := circuit.RelayInfo{Hop: h}
		if p := d.Policy(); p != nil && p.IsExit() {
			ri.Policy = p
		}
		out = append(out, ri)
	}
	return out
}

// hopOf returns what a client needs to extend to the relay d describes,
// with the first of its addresses that one of our transports carries;
// false if there is none.
func (n *Node) hopOf(d *descriptor.Descriptor) (circuit.Hop, bool) {
	for _, a := range d.Addrs {
		if !n.links.Supports(a) {
			continue
		}
		// Descriptors are immutable once parsed, so the hop can point at
		// the descriptor's 1184-byte KEM key instead of copying it for
		// every relay each time paths are chosen.
		return circuit.Hop{
			Identity:  d.Identity,
			Link:      d.Link,
			Addr:      a,
			Onion:     d.Onion,
			KEM:       &d.KEM,
			Protocols: d.Protocols,
		}, true
	}
	return circuit.Hop{}, false
}
