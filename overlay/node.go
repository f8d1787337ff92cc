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
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/safelog"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
	"github.com/darkmatter/darkmatter/overlay/dir"
	"github.com/darkmatter/darkmatter/overlay/link"
	"github.com/darkmatter/darkmatter/overlay/transport"
)

// Config configures a Node. The zero value is a client on the default
// network using TCP; it still needs Bootstrap entries to reach anything.
type Config struct {
	// Network is the network name (default "darkmatter").
	Network string
	// Transport carries links (default transport.TCP).
	Transport transport.Transport
	// Listen, if set, makes the node a relay listening on this address.
	Listen string
	// Advertise is the link address put in the descriptor (default: the
	// listener's address).
	Advertise string
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
	Logf     safelog.Logf
}

// Node is a darkmatter node: client, relay or both.
type Node struct {
	cfg   Config
	keys  *keys.NodeKeys
	desc  *descriptor.Descriptor // nil for clients
	hello []byte
	sw    *circuit.Switch
	mgr   *circuit.Manager
	dir   *dir.Directory
	logf  safelog.Logf

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// mu guards the following.
	mu       sync.Mutex
	ln       net.Listener
	links    map[keys.LinkPublicKey]*link.Link
	all      map[*link.Link]*descriptor.Descriptor // open links → the peer's verified HELLO descriptor, or nil
	dialing  map[keys.LinkPublicKey]*pendingLink
	closed   bool
	startErr error
}

type pendingLink struct {
	done chan struct{}
	l    *link.Link
	err  error
}

// ErrClosed is returned after Close.
var ErrClosed = errors.New("overlay: node closed")

// New returns a Node; Start brings it up.
func New(cfg Config) (*Node, error) {
	if cfg.Network == "" {
		cfg.Network = "darkmatter"
	}
	if cfg.Transport == nil {
		cfg.Transport = &transport.TCP{}
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
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{
		cfg:     cfg,
		keys:    k,
		dir:     dir.New(dir.Config{Network: cfg.Network}),
		logf:    cfg.Logf,
		ctx:     ctx,
		cancel:  cancel,
		links:   make(map[keys.LinkPublicKey]*link.Link),
		all:     make(map[*link.Link]*descriptor.Descriptor),
		dialing: make(map[keys.LinkPublicKey]*pendingLink),
	}
	scfg := circuit.Config{Network: cfg.Network, Linker: n, Logf: cfg.Logf}
	if cfg.Listen != "" {
		scfg.Onion, scfg.KEM = k.Onion, k.KEM
		scfg.Exit = cfg.Exit
	}
	var err error
	if n.sw, err = circuit.NewSwitch(scfg); err != nil {
		cancel()
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
		cancel()
		return nil, err
	}
	return n, nil
}

// Start listens (relays), announces the node to its bootstrap relays and
// fetches their directories. With no bootstrap relays it returns at once.
func (n *Node) Start(ctx context.Context) error {
	if n.cfg.Listen != "" {
		ln, err := n.cfg.Transport.Listen(n.cfg.Listen)
		if err != nil {
			return fmt.Errorf("overlay: listen: %w", err)
		}
		if err := n.makeDescriptor(ln.Addr().String()); err != nil {
			ln.Close()
			return err
		}
		n.mu.Lock()
		n.ln = ln
		n.mu.Unlock()
		n.goFunc(func() { n.acceptLoop(ln) })
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

func (n *Node) makeDescriptor(listenAddr string) error {
	adv := n.cfg.Advertise
	if adv == "" {
		adv = listenAddr
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
		Addrs:        []string{adv},
		ExitPolicy:   pol.String(),
		Bandwidth:    n.cfg.Bandwidth,
		Published:    now,
	}
	d.Sign(n.keys.Identity)
	b := d.Marshal()
	if _, err := descriptor.Parse(b); err != nil {
		return fmt.Errorf("overlay: own descriptor: %w", err)
	}
	n.desc, n.hello = d, b
	n.dir.Add(d)
	return nil
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

// Addr returns the listener's address (nil for a client).
func (n *Node) Addr() net.Addr {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ln == nil {
		return nil
	}
	return n.ln.Addr()
}

// Relays returns the descriptors the node knows.
func (n *Node) Relays() []*descriptor.Descriptor { return n.dir.List() }

// Links returns the number of open links.
func (n *Node) Links() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.all)
}

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

// Dial is DialStream with the default isolation key, shaped like
// net.Dialer.DialContext. Only "tcp" networks are supported.
func (n *Node) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("overlay: network %q not supported", network)
	}
	return n.DialStream(ctx, addr, "")
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

// Close shuts the node down: circuits, links and listener; it waits for the
// node's goroutines. Close can be called more than once.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	ln := n.ln
	links := make([]*link.Link, 0, len(n.all))
	for l := range n.all {
		links = append(links, l)
	}
	n.mu.Unlock()
	n.cancel()
	if ln != nil {
		ln.Close()
	}
	n.mgr.Close()
	n.sw.Close()
	for _, l := range links {
		l.Close()
	}
	n.wg.Wait()
	return nil
}

// relayInfos adapts the directory for path selection.
func (n *Node) relayInfos() []circuit.RelayInfo {
	ds := n.dir.List()
	out := make([]circuit.RelayInfo, 0, len(ds))
	for _, d := range ds {
		if len(d.Addrs) == 0 {
			continue
		}
		ri := circuit.RelayInfo{Hop: hopOf(d)}
		if p := d.Policy(); p != nil && p.IsExit() {
			ri.Policy = p
		}
		out = append(out, ri)
	}
	return out
}

// hopOf returns what a client needs to extend to the relay d describes.
func hopOf(d *descriptor.Descriptor) circuit.Hop {
	// Descriptors are immutable once parsed, so the hop can point at the
	// descriptor's 1184-byte KEM key instead of copying it for every relay
	// each time paths are chosen.
	return circuit.Hop{Identity: d.Identity, Link: d.Link, Addr: d.Addrs[0], Onion: d.Onion, KEM: &d.KEM}
}
