package dht

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// Handler answers DHT requests; *DHT is one. Tests attach hostile ones.
type Handler interface {
	HandleRequest(ctx context.Context, from Contact, req []byte) []byte
}

// MemNetwork is an in-memory network of DHT nodes for tests and for the
// simulator (darkmatter sim): a Call runs the callee's HandleRequest on
// the caller's goroutine, with the real message encoding, and counts
// messages and bytes. Its zero value is not usable; call NewMemNetwork.
//
// Typical use:
//
//	net := dht.NewMemNetwork()
//	d, err := net.NewDHT(dht.Config{Self: c, Network: "sim", Server: true})
//	...
//	net.Detach(c.ID) // the node leaves: calls to it fail
type MemNetwork struct {
	mu    sync.RWMutex // guards nodes
	nodes map[keys.NodeID]memNode

	messages atomic.Uint64
	bytes    atomic.Uint64
}

type memNode struct {
	c Contact
	h Handler
}

// ErrUnreachable is returned by a MemNetwork call to a node not attached.
var ErrUnreachable = errors.New("dht: node unreachable")

// ErrNoAnswer is returned by a MemNetwork call the callee did not answer.
var ErrNoAnswer = errors.New("dht: no answer")

// NewMemNetwork returns an empty network.
func NewMemNetwork() *MemNetwork {
	return &MemNetwork{nodes: make(map[keys.NodeID]memNode)}
}

// Attach makes h answer calls to c.ID.
func (n *MemNetwork) Attach(c Contact, h Handler) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.nodes[c.ID] = memNode{c, h}
}

// Detach removes a node; calls to it fail with ErrUnreachable.
func (n *MemNetwork) Detach(id keys.NodeID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.nodes, id)
}

// Resolve returns the address an attached node was attached with (a
// Config.Resolve for the simulated directory).
func (n *MemNetwork) Resolve(id keys.NodeID) (string, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	m, ok := n.nodes[id]
	return m.c.Addr, ok
}

// Traffic returns the requests and answers carried so far, and their bytes.
func (n *MemNetwork) Traffic() (messages, bytes uint64) {
	return n.messages.Load(), n.bytes.Load()
}

// Transport returns the Transport of the node self.
func (n *MemNetwork) Transport(self Contact) Transport { return &memTransport{n: n, self: self} }

// NewDHT creates a DHT on this network, filling cfg.Transport and, when
// nil, cfg.Resolve, and attaches it when it is a server.
func (n *MemNetwork) NewDHT(cfg Config) (*DHT, error) {
	cfg.Transport = n.Transport(cfg.Self)
	if cfg.Resolve == nil {
		cfg.Resolve = n.Resolve
	}
	d, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Server {
		n.Attach(cfg.Self, d)
	}
	return d, nil
}

type memTransport struct {
	n    *MemNetwork
	self Contact
}

func (t *memTransport) Call(ctx context.Context, to Contact, req []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t.n.mu.RLock()
	m, ok := t.n.nodes[to.ID]
	t.n.mu.RUnlock()
	if !ok {
		return nil, ErrUnreachable
	}
	t.n.messages.Add(1)
	t.n.bytes.Add(uint64(len(req)))
	resp := m.h.HandleRequest(ctx, t.self, append([]byte(nil), req...))
	if resp == nil {
		return nil, ErrNoAnswer
	}
	t.n.messages.Add(1)
	t.n.bytes.Add(uint64(len(resp)))
	return resp, nil
}
