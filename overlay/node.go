package overlay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/darkmatter/darkmatter/apps/names"
	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/circuit/exitpolicy"
	"github.com/darkmatter/darkmatter/circuit/protover"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/defaults"
	"github.com/darkmatter/darkmatter/internal/safelog"
	"github.com/darkmatter/darkmatter/internal/specialname"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
	"github.com/darkmatter/darkmatter/overlay/dht"
	"github.com/darkmatter/darkmatter/overlay/dir"
	"github.com/darkmatter/darkmatter/overlay/link"
	"github.com/darkmatter/darkmatter/overlay/linkmgr"
	"github.com/darkmatter/darkmatter/overlay/linkrpc"
	"github.com/darkmatter/darkmatter/overlay/relaylink"
	"github.com/darkmatter/darkmatter/overlay/transport"
	quictr "github.com/darkmatter/darkmatter/overlay/transport/quic"
)

// Config configures a Node. The zero value is a client on the default
// network using TCP; it still needs Bootstrap entries to reach anything.
type Config struct {
	// Network is the network name (default "darkmatter").
	Network string
	// Transports carry links by address scheme ("tcp", "quic";
	// memnet under "mem" in tests). Nil means TCP only.
	Transports transport.Registry
	// Listen, if not empty, makes the node a relay listening on these
	// addresses ("tcp://host:port", or a bare "host:port" for tcp), one
	// transport each or several on one.
	Listen []string
	// Advertise are the link addresses put in the descriptor (default:
	// the listeners' addresses). A relay that listens on an unspecified
	// address (0.0.0.0, ::, or no host) must set it: New refuses
	// otherwise, since peers cannot reach "every address".
	Advertise []string
	// Keys are the node's keys (default: fresh keys in memory).
	Keys *keys.NodeKeys
	// Exit, if non-nil, makes a relay an exit with this configuration.
	Exit *circuit.ExitConfig
	// Executor, if non-nil, makes a relay an executor of delegated calls
	// with this configuration (spec/compute.md §5).
	Executor *ExecutorConfig
	// Bootstrap lists relays to contact first.
	Bootstrap []descriptor.Bootstrap
	// PathLen is the client's circuit length (default 3).
	PathLen int
	// AllowSameSubnet lets a path use several relays of one /16 (needed on
	// a loopback test network).
	AllowSameSubnet bool
	// AllowPrivateAddrs lets this node dial relays at loopback, private,
	// link-local and other non-public addresses (exitpolicy.IsPrivate) on
	// a peer's EXTEND or a directory's word. Only a network that lives on
	// one machine or one LAN sets it (the testnet does); by default a
	// relay refuses to extend there, so that no peer can make it connect
	// into its own network. The node's own choices (bootstrap relays, the
	// first hop of its circuits) are not restricted.
	AllowPrivateAddrs bool

	// Limits on what peers can make a relay hold. Zero means the default
	// named; spec/limits.md lists them all.
	//
	// MaxLinks and MaxLinksPerIP bound the accepted links, open or in
	// their handshake, in all and from one IPv4 address or IPv6 /64
	// (linkmgr.DefaultMaxLinks 4096, DefaultMaxLinksPerIP 16);
	// MaxHandshakes and MaxHandshakesPerIP bound the inbound handshakes in
	// flight (linkmgr.DefaultMaxHandshakes 256, DefaultMaxHandshakesPerIP
	// 4). A connection over a limit is closed before any cryptography.
	MaxLinks, MaxLinksPerIP, MaxHandshakes, MaxHandshakesPerIP int
	// CreateRate and CreateBurst rate CREATE cells per link
	// (circuit.DefaultCreateRate 200/s, DefaultCreateBurst 256);
	// MaxCircuitsPerLink, MaxCircuitsPerIP and MaxCircuits bound the
	// circuits peers open on one link, from one IPv4 address or IPv6 /64,
	// and in all (circuit.DefaultMaxCircuitsPerChannel 4096, MaxCircuits/8,
	// DefaultMaxCircuits 65536).
	CreateRate                                        float64
	CreateBurst                                       int
	MaxCircuitsPerLink, MaxCircuitsPerIP, MaxCircuits int
	// DirAnswerWindow, DirMaxAnswers and DirAnswerTimeout pace the
	// answers to DIR_GET (dir.DefaultAnswerWindow 32 cells,
	// DefaultMaxAnswers 64, DefaultAnswerTimeout 10 s); DirGetInterval
	// and DirGetBurst rate DIR_GET per link (dir.DefaultGetInterval 1 min,
	// DefaultGetBurst 3).
	DirAnswerWindow, DirMaxAnswers int
	DirAnswerTimeout               time.Duration
	DirGetInterval                 time.Duration
	DirGetBurst                    int
	// MemoryBudget bounds the cells queued on all the node's links
	// together (link.NewBudget; zero means link.DefaultBudget, 65536 cells,
	// 256 MiB): over it the circuits holding the oldest queued cells are
	// destroyed (DESTROY reason 5), like Tor's out-of-memory handler.
	MemoryBudget int
	// MaxCircuitQueue bounds the cells queued for one circuit on one link,
	// and StallTimeout closes a link whose oldest queued cell waited that
	// long (link.Config; zero means link.DefaultMaxCircuitQueue 1088,
	// DefaultStallTimeout 30 s).
	MaxCircuitQueue int
	StallTimeout    time.Duration
	// Announce is how many relays of its directory a relay links to when
	// it starts, after its first directory fetch, so that their HELLO
	// carries its descriptor to them (default DefaultAnnounce). Negative:
	// none.
	Announce int

	// OnionRotation is how often a relay replaces its onion and KEM keys
	// (default DefaultOnionRotation; negative: never). The pair it
	// replaces still answers CREATE for OnionOverlap, then is erased
	// (spec/keys.md §4): Keys' Onion and KEM keys are, the first time.
	OnionRotation time.Duration
	// Republish is how often a relay signs a fresh descriptor and
	// announces it (default DefaultRepublish, well within
	// descriptor.MaxAge); it also republishes at once when its keys
	// rotate.
	Republish time.Duration
	// OnionKeyFile, if set, is where a relay keeps its onion pairs (the
	// current one and the previous one during the overlap) across
	// restarts (keys.WriteOnionKeysFile). A missing file is created, from
	// Keys' onion and KEM keys.
	OnionKeyFile string

	// DHTMinAge is how long this node must have known a relay before it
	// stores DHT records there (default DefaultDHTMinAge; negative: no
	// minimum, for test networks).
	DHTMinAge time.Duration
	// DHTViaCircuit makes a relay's own DHT lookups and stores go through
	// a circuit, as a client's always do, so that the DHT nodes asked do
	// not learn the relay's interest (later issues use it for lookups of
	// hidden services and names).
	DHTViaCircuit bool
	// DHTLimits bound what peers can make this node's DHT hold (dht
	// defaults for zero fields). Only a small test network raises
	// StoresPerMinute, so that one publisher may store a module's
	// hundred-odd chunks on its few nodes at once.
	DHTLimits dht.StoreLimits
	// DHTRequestRate and DHTRequestBurst rate the DHT requests each peer
	// makes over its link (linkrpc.DefaultRate 50/s, DefaultBurst 100).
	// A small test network raises them: there, one client's blob of a
	// hundred chunks asks every node for every chunk.
	DHTRequestRate  float64
	DHTRequestBurst int
	// NameDifficulty is the network's proof-of-work difficulty of name
	// registrations (spec/names.md §3; 0: names.DefaultDifficulty). Every
	// node of a network must use the same; test networks lower it.
	NameDifficulty int
	// Petnames are the user's own names, which ResolveName consults
	// before the network (nil: none).
	Petnames *names.Petnames
	// DisableReachProbe stops the node from asking relays' STUN servers
	// which address they see it at (Reachability, spec/nat.md §2).
	DisableReachProbe bool
	// DisableSTUN stops a relay from answering STUN Binding requests on
	// the UDP port of its link addresses (spec/nat.md §2).
	DisableSTUN bool

	// DisableHop stops a relay from relaying links to nodes behind NAT
	// (the Hop protocol, spec/nat.md §8); Hop sets its limits.
	DisableHop bool
	Hop        relaylink.Config
	// Reserve is how many relays a relay behind NAT reserves with; its
	// descriptor then lists their "relay://" addresses instead of its
	// own (spec/nat.md §8.1). Zero reserves nowhere.
	Reserve int
	// RelayVia is the scheme of the transport that relayed links reach
	// their relay over (default "tcp"; tests over memnet use "mem").
	RelayVia string
	// DisablePunch stops the node from punching direct QUIC paths to the
	// other end of its relayed links (spec/nat.md §8.4).
	DisablePunch bool
	// SiteDir keeps the files of the sites the node hosts (HostSite;
	// default StateDir/sites).
	SiteDir string
	// SiteCheckInterval is how often a host looks for newer manifests of
	// its sites (default SiteCheckInterval).
	SiteCheckInterval time.Duration

	// StateDir, if set, is where the node keeps its relay list, guards and
	// learned build times across restarts (created 0700, files 0600), so
	// that a restart is usable at once.
	StateDir string
	// GuardMinAge is how long this node must have known a relay before it
	// samples it as a guard (default circuit.DefaultMinGuardAge; negative:
	// no minimum, for test networks).
	GuardMinAge time.Duration
	// Preemptive is how many clean circuits a client keeps built ahead of
	// need (default DefaultPreemptive; negative: none, and relays keep
	// none unless it is set).
	Preemptive int
	// Family lists the relays run by the same operator (each must list
	// this one too): no client puts two of them in one circuit.
	Family []keys.NodeID

	// ServiceKey is the hidden-service key Listen uses for an address
	// "<key>.dark:PORT" (ListenService takes any key).
	ServiceKey *keys.ServicePrivateKey
	// ClientAuthKeys are this node's client authorisation keys, tried on
	// hidden services that demand one (darkmatter keygen --client).
	ClientAuthKeys []*keys.ClientAuthPrivateKey
	// HSPeriod is the time period of hidden services' blinded keys
	// (default hsblind.DefaultPeriodLength, one day); every node of a
	// network must use the same.
	HSPeriod time.Duration

	// Bandwidth is advertised in the descriptor (bytes/s).
	Bandwidth uint32
	// KeepAlive and IdleTimeout tune links (link package defaults).
	KeepAlive, IdleTimeout time.Duration
	// DirRefresh is how often a client synchronises its directory with
	// its directory sources, its primary guards (default 5 min).
	DirRefresh time.Duration
	// Gossip is how often a relay synchronises its directory with
	// GossipFanout random relays (defaults DefaultGossip, jittered ±25%,
	// and DefaultGossipFanout).
	Gossip       time.Duration
	GossipFanout int
	// Progress, if set, receives bootstrap progress (0..100) and a message.
	Progress func(percent int, msg string)
	// Logf receives debug logs; nil is silent. Addresses and keys are
	// logged only through safelog.S.
	Logf safelog.Logf
}

// Node is a darkmatter node: client, relay or both. Its methods are safe
// for concurrent use.
type Node struct {
	cfg    Config
	keys   *keys.NodeKeys
	desc   atomic.Pointer[descriptor.Descriptor] // nil for clients; set by Start
	ring   *keys.OnionKeyring                    // a relay's onion pairs
	sw     *circuit.Switch
	mgr    *circuit.Manager
	dir    *dir.Directory
	links  *linkmgr.Manager
	budget *link.Budget // shared by every link of the node
	rpc    *linkrpc.Mux // DHT calls over links

	dhtMu   sync.Mutex
	dht     *dht.DHT     // set by Start
	viaCirc *dhtCircuits // a client's DHT transport, or nil
	hidden  hidden       // hidden services published and dialled
	compute compute      // delegated calls made and served
	names   nameState    // the name registry's rules and resolved names
	sites   siteState    // sites visited and hosted
	reach   reachState   // what STUN answers said of this node
	relay   relayState   // relayed links and hole punching
	logf    safelog.Logf

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	extendRefused atomic.Uint64 // EXTENDs refused by the extend rules
	helloRefused  atomic.Uint64 // HELLO descriptors not stored (announcedFrom)
	natMalformed  atomic.Uint64 // NAT cells that did not parse
	natRefused    atomic.Uint64 // INCOMING and PUNCH messages not acted on

	// mu guards the following.
	mu         sync.Mutex
	listeners  []net.Listener
	listening  []transport.Addr // what the listeners are bound to
	stun       []net.PacketConn // sockets of the STUN server
	udp        []io.Closer      // QUIC transports and their sockets, closed in order
	udpSock    *udpSock         // the socket QUIC links are dialled and punched from
	ownAddrs   []string         // "scheme://host:port" we listen on or advertise
	dirSources int              // a client's directory sources that answered last
	closed     bool
}

// DefaultPreemptive is Config.Preemptive of a client when zero.
const DefaultPreemptive = 2

// DefaultAnnounce is Config.Announce when zero.
const DefaultAnnounce = 64

// Stats are a node's gauges and counters, for status pages and tests.
type Stats struct {
	Links linkmgr.Stats
	Dir   dir.Stats
	// Circuits are the circuit switch's counters (limits, refusals).
	Circuits circuit.Stats
	// Budget is the memory budget all the node's links share.
	Budget link.BudgetStats
	// ExtendRefused counts EXTENDs refused by the extend rules (unknown
	// relay, address not in its descriptor, private address, itself).
	ExtendRefused uint64
	// HelloRefused counts peers' HELLO descriptors not stored because
	// the link did not come from an address they list.
	HelloRefused uint64
	// NATMalformed counts NAT cells that did not parse; NATRefused the
	// INCOMING and PUNCH messages not acted on (no reservation through
	// that link, not a relayed link, a bound reached).
	NATMalformed, NATRefused uint64
}

var (
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("overlay: node closed")
	// ErrBadAddress is returned by Dial for a mistyped .dark address or
	// name; the error also matches the crypto/keys or specialname error of
	// the failed check.
	ErrBadAddress = errors.New("overlay: bad address")
)

// New returns a Node; Start brings it up.
func New(cfg Config) (*Node, error) {
	if cfg.Network == "" {
		cfg.Network = link.DefaultNetwork
	}
	if cfg.Transports == nil {
		cfg.Transports = transport.Registry{transport.SchemeTCP: &transport.TCP{}, quictr.Scheme: &udpTransport{}}
	}
	defaults.Set(&cfg.DirRefresh, 5*time.Minute)
	defaults.Set(&cfg.Gossip, DefaultGossip)
	defaults.Set(&cfg.GossipFanout, DefaultGossipFanout)
	if cfg.DHTMinAge == 0 {
		cfg.DHTMinAge = DefaultDHTMinAge // negative: no minimum
	}
	if cfg.Announce == 0 {
		cfg.Announce = DefaultAnnounce
	}
	if cfg.OnionRotation == 0 {
		cfg.OnionRotation = DefaultOnionRotation
	}
	defaults.Set(&cfg.Republish, DefaultRepublish)
	if cfg.NameDifficulty < 0 || cfg.NameDifficulty > names.MaxDifficulty {
		return nil, fmt.Errorf("overlay: name difficulty %d out of 0..%d", cfg.NameDifficulty, names.MaxDifficulty)
	}
	defaults.Set(&cfg.NameDifficulty, names.DefaultDifficulty)
	defaults.Set(&cfg.SiteCheckInterval, SiteCheckInterval)
	if err := checkListen(cfg); err != nil {
		return nil, err
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
		dir: dir.New(dir.Config{
			Network:       cfg.Network,
			AnswerWindow:  cfg.DirAnswerWindow,
			MaxAnswers:    cfg.DirMaxAnswers,
			AnswerTimeout: cfg.DirAnswerTimeout,
			GetInterval:   cfg.DirGetInterval,
			GetBurst:      cfg.DirGetBurst,
			Admission:     admission(cfg),
		}),
		budget: link.NewBudget(cfg.MemoryBudget),
		logf:   cfg.Logf,
	}
	n.relay.held = make(map[*linkmgr.Link]*reservation)
	n.relay.waiting = make(map[*linkmgr.Link]chan relaylink.Msg)
	n.relay.kick = make(chan struct{}, 1)
	n.relay.punch.sessions = make(map[*linkmgr.Link]*punchSession)
	n.relay.punch.started = make(map[*linkmgr.Link]int)
	if _, ok := n.cfg.Transports[SchemeRelay]; !ok {
		t := maps.Clone(n.cfg.Transports)
		t[SchemeRelay] = relayTransport{n}
		n.cfg.Transports = t
	}
	if n.isRelay() && !cfg.DisableHop && cfg.Reserve == 0 {
		n.relay.hop = n.newHop()
	}
	n.rpc = linkrpc.New(linkrpc.Config{Cmd: cell.CmdDHT, Handler: rpcHandler{n}, Rate: cfg.DHTRequestRate, Burst: cfg.DHTRequestBurst})
	var err error
	scfg := circuit.Config{Network: cfg.Network, Linker: linker{n}, Logf: cfg.Logf,
		CreateRate: cfg.CreateRate, CreateBurst: cfg.CreateBurst,
		MaxCircuitsPerChannel: cfg.MaxCircuitsPerLink, MaxCircuitsPerSource: cfg.MaxCircuitsPerIP,
		MaxCircuits: cfg.MaxCircuits}
	if n.isRelay() {
		if n.ring, err = loadOnionKeys(cfg, k, time.Now()); err != nil {
			return nil, err
		}
		scfg.OnionKeys = n.ring
		scfg.Identity = k.Identity.Public()
		scfg.Extender = extender{n}
		scfg.Exit = exitWithOwnAddrs(cfg)
		scfg.Handlers = map[circuit.StreamKind]circuit.StreamHandler{circuit.KindDir: n.dir, circuit.KindDHT: dhtProxy{n}}
		scfg.Intro = &circuit.IntroConfig{} // every relay can be an introduction point
		if err := n.startExecutor(); err != nil {
			return nil, err
		}
		if n.compute.exec != nil {
			scfg.Handlers[circuit.KindCompute] = computeHandler{n}
		}
	}
	if n.sw, err = circuit.NewSwitch(scfg); err != nil {
		n.closeExecutor()
		return nil, err
	}
	lcfg := linkmgr.Config{
		Link: link.Config{
			Network:         cfg.Network,
			KeepAlive:       cfg.KeepAlive,
			IdleTimeout:     cfg.IdleTimeout,
			MaxCircuitQueue: cfg.MaxCircuitQueue,
			StallTimeout:    cfg.StallTimeout,
			Budget:          n.budget,
		},
		Transports:         n.cfg.Transports,
		Circuits:           n.sw,
		Handler:            (*linkEvents)(n),
		Descriptors:        n.dir,
		MaxLinks:           cfg.MaxLinks,
		MaxLinksPerIP:      cfg.MaxLinksPerIP,
		MaxHandshakes:      cfg.MaxHandshakes,
		MaxHandshakesPerIP: cfg.MaxHandshakesPerIP,
		Logf:               cfg.Logf,
	}
	if h := n.relay.hop; h != nil {
		lcfg.Splice = h.ServeConn
	}
	if n.isRelay() {
		// A client uses a fresh key per link so its links cannot be
		// linked to each other.
		lcfg.Link.Static = k.Link
		lcfg.Link.Protocols = n.relayProtocols()
	}
	if n.links, err = linkmgr.New(lcfg); err != nil {
		n.sw.Close()
		n.closeExecutor()
		return nil, err
	}
	mcfg := circuit.ManagerConfig{
		Switch:          n.sw,
		Relays:          n.relayInfos,
		PathLen:         cfg.PathLen,
		AllowSameSubnet: cfg.AllowSameSubnet,
		Guards:          circuit.GuardParams{MinAge: cfg.GuardMinAge},
		BuildTimes:      loadBuildTimes(cfg),
		Logf:            cfg.Logf,
	}
	if cfg.StateDir != "" {
		if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
			n.links.Close()
			n.sw.Close()
			n.closeExecutor()
			return nil, err
		}
		mcfg.GuardFile = filepath.Join(cfg.StateDir, guardsFile)
	}
	if !n.isRelay() && cfg.Preemptive >= 0 || n.isRelay() && cfg.Preemptive > 0 {
		mcfg.Preemptive = cfg.Preemptive
		if mcfg.Preemptive == 0 {
			mcfg.Preemptive = DefaultPreemptive
		}
	}
	n.mgr, err = circuit.NewManager(mcfg)
	if err != nil {
		n.links.Close()
		n.sw.Close()
		n.closeExecutor()
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
		published := n.desc.Load().Published
		n.goFunc(func() { n.republishLoop(published) })
	}
	n.progress(5, "starting")
	n.loadState()
	n.goFunc(n.stateLoop)
	// A client restarting with a saved relay list that holds a path is
	// usable at once: it asks its directory sources in the background.
	restarted := !n.isRelay() && len(n.cfg.Bootstrap) > 0 && n.enoughRelays()
	switch {
	case restarted:
		n.progress(75, fmt.Sprintf("know %d relays from the saved list", len(n.dir.List())))
	case len(n.cfg.Bootstrap) > 0:
		if err := n.fetchDirectory(ctx); err != nil {
			return err
		}
		if n.isRelay() {
			n.announce(ctx)
		}
	}
	if err := n.startDHT(); err != nil {
		return err
	}
	if n.isRelay() || len(n.cfg.Bootstrap) > 0 {
		n.goFunc(func() { n.refreshLoop(restarted) })
		if !n.cfg.DisableReachProbe {
			n.goFunc(n.reachLoop)
		}
	}
	if n.isRelay() && n.cfg.Reserve > 0 {
		n.goFunc(n.reserveLoop)
	}
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
		var ln net.Listener
		if u, ok := t.(*udpTransport); ok {
			ln, err = n.listenQUIC(u, pa.HostPort)
		} else {
			ln, err = t.Listen(pa.HostPort)
		}
		if err != nil {
			return fail(fmt.Errorf("overlay: listen: %w", err))
		}
		lns = append(lns, ln)
		addrs = append(addrs, transport.Addr{Scheme: pa.Scheme, HostPort: ln.Addr().String()})
	}
	if _, err := n.updateOnionKeys(time.Now()); err != nil {
		return fail(err)
	}
	hello, err := n.makeDescriptor(addrs)
	if err != nil {
		return fail(err)
	}
	n.links.SetHello(hello)
	n.mu.Lock()
	n.listeners = append(n.listeners, lns...)
	n.listening = addrs
	for _, a := range addrs {
		n.ownAddrs = append(n.ownAddrs, a.String())
	}
	n.ownAddrs = append(n.ownAddrs, n.desc.Load().Addrs...)
	n.mu.Unlock()
	for i, ln := range lns {
		if err := n.links.Serve(ln, addrs[i].Scheme); err != nil {
			return fail(err)
		}
	}
	n.startSTUN(addrs)
	return nil
}

// makeDescriptor signs the relay's descriptor with its current onion pair
// and a fresh publication time, adds it to the directory and returns its
// wire form, the HELLO payload.
func (n *Node) makeDescriptor(listening []transport.Addr) ([]byte, error) {
	var addrs []string
	if len(n.cfg.Advertise) > 0 {
		addrs = n.cfg.Advertise
	} else if n.cfg.Reserve > 0 {
		// Behind NAT: reachable through the relays only, and not at
		// all before the first reservation.
		addrs = n.relayedAddrs()
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
	if prev := n.desc.Load(); prev != nil && now.Unix() <= prev.Published.Unix() {
		// Whole seconds on the wire, and a directory keeps only a later
		// descriptor: a republication in the same second is a second on.
		now = prev.Published.Add(time.Second)
	}
	cur := n.ring.Current()
	d := &descriptor.Descriptor{
		Network:      n.cfg.Network,
		Link:         n.keys.Link.Public(),
		Onion:        cur.Onion.Public(),
		OnionExpires: n.onionExpires(cur, now),
		KEM:          *cur.KEM.Public(),
		Addrs:        addrs,
		ExitPolicy:   pol.String(),
		Bandwidth:    n.cfg.Bandwidth,
		Protocols:    link.Protocols(n.relayProtocols()),
		Published:    now,
	}
	if len(n.cfg.Family) > 0 {
		if err := d.SetFamily(n.cfg.Family); err != nil {
			return nil, fmt.Errorf("overlay: family: %w", err)
		}
	}
	if err := n.computeDescriptor(d); err != nil {
		return nil, fmt.Errorf("overlay: executor capacity: %w", err)
	}
	if err := n.reachDescriptor(d); err != nil {
		return nil, fmt.Errorf("overlay: reachability: %w", err)
	}
	d.Sign(n.keys.Identity)
	b := d.Marshal()
	parsed, err := descriptor.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("overlay: own descriptor: %w", err)
	}
	n.desc.Store(parsed)
	n.dir.Add(parsed)
	return b, nil
}

// relayProtocols are the subprotocols a relay speaks above its links
// (spec/protover.md); the link layer adds its own (Link, and LinkAES with
// hardware AES) in HELLO and, through link.Protocols, in the descriptor.
func (n *Node) relayProtocols() protover.Set {
	p := map[protover.ID]string{protover.Relay: "1-2", protover.Dir: "1-3", protover.Joint: "1", protover.DHT: "1", protover.Intro: "1"}
	if n.cfg.Exit != nil {
		p[protover.Exit] = "1"
	}
	if n.cfg.Executor != nil {
		p[protover.Compute] = "1"
	}
	if n.relay.hop != nil {
		p[protover.Hop] = "1"
	}
	if !n.cfg.DisablePunch && slices.ContainsFunc(n.cfg.Listen, func(a string) bool {
		return strings.HasPrefix(a, quictr.Scheme+transport.SchemeSep)
	}) {
		p[protover.Punch] = "1"
	}
	return protover.New(p)
}

// Descriptor returns the relay's signed descriptor (nil for a client).
func (n *Node) Descriptor() *descriptor.Descriptor { return n.desc.Load() }

// Bootstrap returns the "ID@HOST:PORT" string others use to reach this relay.
func (n *Node) Bootstrap() descriptor.Bootstrap {
	d := n.desc.Load()
	if d == nil {
		return descriptor.Bootstrap{}
	}
	return d.Bootstrap()
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
	// Names that must never leave this node (.dark, .onion, localhost,
	// ...): refused before any circuit is built (spec/streams.md §7), or,
	// for a valid .dark address, reached as a hidden service.
	if host, port, err := net.SplitHostPort(target); err == nil {
		if err := specialname.Check(host); specialname.IsMistyped(err) {
			return nil, fmt.Errorf("%w: %w", ErrBadAddress, err)
		} else if errors.Is(err, specialname.ErrHiddenService) {
			return n.dialHidden(ctx, host, port, isolation)
		} else if errors.Is(err, specialname.ErrName) {
			return n.dialName(ctx, host, port, isolation)
		} else if err != nil {
			return nil, err
		}
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

// Ready builds a first circuit (to any exit) so the next stream usually
// starts at once, reporting progress like Tor's "Bootstrapped 100%".
func (n *Node) Ready(ctx context.Context) error {
	n.progress(80, "building a circuit")
	// A failed build is retried: the failure moves the next one off the
	// relay that failed (a restart's first guard may be gone).
	var err error
	for range readyAttempts {
		if err = n.mgr.Preempt(ctx); err == nil || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("overlay: first circuit: %w", err)
	}
	n.progress(100, "done")
	return nil
}

// readyAttempts bounds the circuit builds Ready tries: enough to get past
// a dead guard (out after one failure) and a dead middle and exit (out
// after two accusations each).
const readyAttempts = 8

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

func (n *Node) goFunc(f func()) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
	return true
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
	if h := n.relay.hop; h != nil {
		h.Close()
	}
	n.closeSites()
	n.closeHidden()
	n.closeSTUN()
	n.closeUDP()
	n.closeCompute()
	if d := n.getDHT(); d != nil {
		d.Close()
	}
	if n.viaCirc != nil {
		n.viaCirc.close()
	}
	n.rpc.Close()
	if err := n.saveState(); err != nil {
		n.logf.Printf("overlay: saving state: %v", err)
	}
	n.mgr.Close()
	n.sw.Close()
	n.closeExecutor() // after the Switch: its stream handlers have returned
	n.links.Close()
	n.dir.Close()
	n.wg.Wait()
	return nil
}

// Stats returns the node's gauges and counters.
func (n *Node) Stats() Stats {
	return Stats{
		Links:         n.links.Stats(),
		Dir:           n.dir.Stats(),
		Circuits:      n.sw.Stats(),
		Budget:        n.budget.Stats(),
		ExtendRefused: n.extendRefused.Load(),
		HelloRefused:  n.helloRefused.Load(),
		NATMalformed:  n.natMalformed.Load(),
		NATRefused:    n.natRefused.Load(),
	}
}

// checkListen refuses a relay that would listen on an unspecified address
// (0.0.0.0, ::, or an empty host) without Advertise: its descriptor would
// name an address nobody can reach, or, worse, a private one.
func checkListen(cfg Config) error {
	if len(cfg.Advertise) > 0 {
		for _, a := range cfg.Advertise {
			na, err := descriptor.NormalizeAddr(a)
			if err != nil {
				return fmt.Errorf("overlay: advertise %q: %w", a, err)
			}
			if unspecifiedHost(na) {
				return fmt.Errorf("overlay: advertise %q: an unspecified address cannot be reached; name the relay's public address", a)
			}
		}
		return nil
	}
	if cfg.Reserve > 0 {
		return nil // the descriptor lists the relays' addresses only
	}
	for _, a := range cfg.Listen {
		if pa, err := transport.ParseAddr(a); err == nil && unspecifiedHost(pa.String()) {
			return fmt.Errorf("overlay: listening on %q (every address) needs Advertise (--advertise): the descriptor must name the address peers reach the relay at", a)
		}
	}
	return nil
}

// hostIsName reports whether the host of "scheme://host:port" is not an IP
// address.
func hostIsName(a string) bool {
	_, hostport, _ := strings.Cut(a, "://")
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return true
	}
	_, err = netip.ParseAddr(host)
	return err != nil
}

// unspecifiedHost reports whether "scheme://host:port" has an empty or
// unspecified host.
func unspecifiedHost(a string) bool {
	_, hostport, ok := strings.Cut(a, "://")
	if !ok {
		hostport = a
	}
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsUnspecified()
}

// exitWithOwnAddrs returns a copy of cfg.Exit whose policy also rejects this
// relay's own addresses (spec/exit-policy.md §3.1): the IP literals it
// listens on and advertises, and every interface address, taken once at
// start. nil if the node is no exit.
func exitWithOwnAddrs(cfg Config) *circuit.ExitConfig {
	if cfg.Exit == nil {
		return nil
	}
	exit := *cfg.Exit
	pol := exit.Policy
	if pol == nil {
		pol = exitpolicy.Default()
	}
	var own []netip.Addr
	for _, a := range append(append([]string(nil), cfg.Listen...), cfg.Advertise...) {
		if ta, err := transport.ParseAddr(a); err == nil {
			if host, _, err := net.SplitHostPort(ta.HostPort); err == nil {
				if ip, err := netip.ParseAddr(host); err == nil {
					own = append(own, ip)
				}
			}
		}
	}
	if ifs, err := net.InterfaceAddrs(); err == nil {
		for _, ia := range ifs {
			if pfx, err := netip.ParsePrefix(ia.String()); err == nil {
				own = append(own, pfx.Addr())
			}
		}
	}
	exit.Policy = pol.WithOwnAddrs(own...)
	return &exit
}

// admission returns the directory's Sybil rules for the node's network: a
// test network whose relays share an address block (AllowSameSubnet)
// relaxes the subnet caps; every other network enforces them.
func admission(cfg Config) dir.Admission {
	if cfg.AllowSameSubnet {
		return dir.RelaxedAdmission()
	}
	return dir.Admission{}
}
