package circuit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/circuit/protover"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/safelog"
)

// maxPendingCreates bounds the CREATEs a relay queues for handshakes; more
// are refused with DESTROY (out of resources) instead of piling up.
const maxPendingCreates = 4096

// Channel is what circuits need from a link: an ordered, authenticated cell
// pipe to one neighbour. *link.Link implements it.
type Channel interface {
	// Send queues c for sending and takes ownership of it.
	Send(c *cell.Cell) error
	// Initiator reports whether this side opened the link; it decides which
	// half of the circuit ID space this side allocates from.
	Initiator() bool
	Done() <-chan struct{}
}

// Hop identifies a relay and the keys a client needs to extend to it.
type Hop struct {
	Identity keys.IdentityPublicKey
	Link     keys.LinkPublicKey
	Addr     string // "host:port" link address
	Onion    keys.OnionPublicKey
	KEM      *keys.KEMPublicKey
	// Protocols are the relay's subprotocol versions from its signed
	// descriptor: the client sends a hop only what they list.
	Protocols protover.Set
}

// Linker opens (or reuses) a channel to a relay.
type Linker interface {
	Channel(ctx context.Context, identity keys.IdentityPublicKey, link keys.LinkPublicKey, addr string) (Channel, error)
}

// Config configures a Switch. The zero value is a client-only switch that
// refuses CREATE.
type Config struct {
	// Network is the network name mixed into every circuit handshake.
	Network string
	// Onion and KEM are the relay's circuit handshake keys; nil means this
	// node is not a relay and answers CREATE with DESTROY.
	Onion *keys.OnionPrivateKey
	KEM   *keys.KEMPrivateKey
	// Linker opens channels for the first hop of client circuits and for
	// EXTEND. Required.
	Linker Linker
	// Exit, if non-nil, makes this relay an exit: it serves KindTCP
	// streams (BEGIN).
	Exit *ExitConfig
	// Handlers serve the other kinds of streams that arrive at this relay
	// when it is a circuit's last hop (KindDir, and later hidden-service and
	// compute kinds). A kind without a handler is answered END UNSUPPORTED.
	Handlers map[StreamKind]StreamHandler
	// MaxStreams bounds the open streams of one circuit end (default 512).
	MaxStreams int
	// MaxJoints bounds the circuits waiting at this relay for a joint
	// (default 4096); more JOIN_ESTABLISHes destroy their circuits.
	MaxJoints int
	// Handshakes is how many circuit handshakes run at once (default 2×CPU).
	Handshakes int
	// ExtendTimeout bounds an EXTEND (default 10s) and a client build step.
	ExtendTimeout time.Duration
	// Random is the randomness for handshakes; nil means crypto/rand.
	Random io.Reader
	Logf   safelog.Logf
}

var (
	// ErrDestroyed means the circuit was destroyed.
	ErrDestroyed = errors.New("circuit: destroyed")
	// ErrClosed means the switch was closed.
	ErrClosed   = errors.New("circuit: switch closed")
	errProtocol = errors.New("circuit: protocol violation")
)

// DestroyedError carries the DESTROY reason.
type DestroyedError struct{ Reason byte }

func (e *DestroyedError) Error() string {
	return fmt.Sprintf("circuit: destroyed (%s)", destroyReasonString(e.Reason))
}
func (e *DestroyedError) Unwrap() error { return ErrDestroyed }

func destroyReasonString(r byte) string {
	switch r {
	case cell.DestroyNone:
		return "closed"
	case cell.DestroyProtocol:
		return "protocol error"
	case cell.DestroyAuth:
		return "cell authentication failed"
	case cell.DestroyLinkClosed:
		return "link closed"
	case cell.DestroyExtendFailed:
		return "extend failed"
	case cell.DestroyResource:
		return "out of resources"
	case cell.DestroyHandshake:
		return "handshake failed"
	case cell.DestroyShutdown:
		return "relay shutting down"
	}
	return fmt.Sprintf("reason %d", r)
}

// endpoint is one end of a circuit on one channel.
type endpoint interface {
	// handle processes a cell arriving on this end; it owns c.
	handle(c *cell.Cell)
	// channelClosed tears the circuit down because the channel died.
	channelClosed()
}

type chanTable struct {
	circs  map[uint32]endpoint
	nextID uint32
}

// Switch routes cells between channels and circuits.
type Switch struct {
	cfg   Config
	hsSem chan struct{}
	// pendingCreates counts CREATEs waiting for or running a handshake.
	pendingCreates atomic.Int64
	// forwardHook, set only by tests, sees forwarded cells (a malicious relay).
	forwardHook func(*cell.Cell)
	// jointHook, set only by tests, sees (and may change) every E2E
	// message crossing a joint: what a rendezvous relay can observe.
	jointHook func([]byte)
	handlers  map[StreamKind]StreamHandler
	// unknownRelay counts relay messages with commands we do not know.
	unknownRelay atomic.Uint64
	joints       jointTable
	logf         safelog.Logf
	ctx          context.Context
	cancel       context.CancelFunc
	wg           sync.WaitGroup

	// mu guards the following.
	mu     sync.Mutex
	chans  map[Channel]*chanTable
	closed bool
}

// NewSwitch returns a Switch.
func NewSwitch(cfg Config) (*Switch, error) {
	if cfg.Linker == nil {
		return nil, errors.New("circuit: Config.Linker is required")
	}
	if (cfg.Onion == nil) != (cfg.KEM == nil) {
		return nil, errors.New("circuit: Onion and KEM keys go together")
	}
	if cfg.Handshakes <= 0 {
		cfg.Handshakes = 2 * runtime.GOMAXPROCS(0)
	}
	if cfg.ExtendTimeout <= 0 {
		cfg.ExtendTimeout = 10 * time.Second
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = 512
	}
	if cfg.MaxJoints <= 0 {
		cfg.MaxJoints = 4096
	}
	handlers := make(map[StreamKind]StreamHandler, len(cfg.Handlers)+1)
	for k, h := range cfg.Handlers {
		handlers[k] = h
	}
	if cfg.Exit != nil {
		if err := cfg.Exit.setDefaults(); err != nil {
			return nil, err
		}
		handlers[KindTCP] = exitHandler{cfg.Exit}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Switch{
		handlers: handlers,
		joints:   jointTable{waiting: make(map[[cell.CookieLen]byte]*relayCirc)},
		cfg:      cfg,
		hsSem:    make(chan struct{}, cfg.Handshakes),
		logf:     cfg.Logf,
		ctx:      ctx,
		cancel:   cancel,
		chans:    make(map[Channel]*chanTable),
	}, nil
}

// Close destroys every circuit and waits for the switch's goroutines.
func (s *Switch) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var eps []endpoint
	for _, t := range s.chans {
		for _, ep := range t.circs {
			eps = append(eps, ep)
		}
	}
	s.mu.Unlock()
	s.cancel()
	for _, ep := range eps {
		ep.channelClosed()
	}
	s.wg.Wait()
	return nil
}

// go runs f as a goroutine tracked by Close.
func (s *Switch) goFunc(f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
	return true
}

// register allocates a circuit ID on ch for ep.
func (s *Switch) register(ch Channel, ep endpoint) (uint32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	if isDone(ch.Done()) {
		// ChannelClosed has run or is about to; a new entry would leak.
		return 0, ErrDestroyed
	}
	t := s.table(ch)
	if len(t.circs) >= 1<<20 {
		return 0, errors.New("circuit: too many circuits on channel")
	}
	var hi uint32
	if ch.Initiator() {
		hi = 1 << 31
	}
	for {
		t.nextID = (t.nextID + 1) &^ (1 << 31)
		id := t.nextID | hi
		if t.nextID == 0 {
			continue
		}
		if _, used := t.circs[id]; !used {
			t.circs[id] = ep
			return id, nil
		}
	}
}

// registerID records ep under a peer-chosen ID.
func (s *Switch) registerID(ch Channel, id uint32, ep endpoint) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || isDone(ch.Done()) {
		return false
	}
	t := s.table(ch)
	if _, used := t.circs[id]; used {
		return false
	}
	t.circs[id] = ep
	return true
}

func (s *Switch) table(ch Channel) *chanTable {
	t := s.chans[ch]
	if t == nil {
		t = &chanTable{circs: make(map[uint32]endpoint)}
		s.chans[ch] = t
	}
	return t
}

func (s *Switch) unregister(ch Channel, id uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.chans[ch]; t != nil {
		delete(t.circs, id)
	}
}

func (s *Switch) lookup(ch Channel, id uint32) endpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.chans[ch]; t != nil {
		return t.circs[id]
	}
	return nil
}

// Stats are a switch's counters.
type Stats struct {
	// UnknownRelay counts relay messages with a command this node does not
	// know, dropped (spec/cells.md §4).
	UnknownRelay uint64
	// JointsWaiting is how many circuits wait for a joint; Joints how many
	// joints are up; JointBuffered how many E2E messages joints hold for a
	// side whose window is closed.
	JointsWaiting, Joints, JointBuffered int
}

// Stats returns the switch's counters.
func (s *Switch) Stats() Stats {
	st := Stats{UnknownRelay: s.unknownRelay.Load()}
	st.JointsWaiting, st.Joints, st.JointBuffered = s.joints.stats()
	return st
}

// ChannelCircuits returns how many circuits use ch (a link manager closes a
// replaced link once none do).
func (s *Switch) ChannelCircuits(ch Channel) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.chans[ch]; t != nil {
		return len(t.circs)
	}
	return 0
}

// Circuits returns how many circuit ends are registered (for status and
// tests).
func (s *Switch) Circuits() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, t := range s.chans {
		n += len(t.circs)
	}
	return n
}

// HandleCell processes a cell that arrived on ch. It takes ownership of c.
// The caller calls it from ch's single reader goroutine.
func (s *Switch) HandleCell(ch Channel, c *cell.Cell) {
	id := c.Circ()
	if id == 0 {
		c.Free() // link-level cells are the caller's business
		return
	}
	if ep := s.lookup(ch, id); ep != nil {
		ep.handle(c)
		return
	}
	switch c.Cmd() {
	case cell.CmdCreate:
		s.handleCreate(ch, c)
	case cell.CmdDestroy:
		c.Free()
	default:
		// Unknown circuit: tell the peer so it frees its side.
		c.Free()
		sendDestroy(ch, id, cell.DestroyProtocol)
	}
}

// ChannelClosed destroys every circuit that used ch.
func (s *Switch) ChannelClosed(ch Channel) {
	s.mu.Lock()
	t := s.chans[ch]
	delete(s.chans, ch)
	s.mu.Unlock()
	if t == nil {
		return
	}
	for _, ep := range t.circs {
		ep.channelClosed()
	}
}

func sendDestroy(ch Channel, id uint32, reason byte) {
	if ch == nil {
		return
	}
	d := cell.New(id, cell.CmdDestroy)
	d.Body()[0] = reason
	ch.Send(d)
}
