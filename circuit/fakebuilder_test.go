package circuit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit/exitpolicy"
	"github.com/darkmatter/darkmatter/crypto/keys"
)

// fakeBuilder builds fakeCircuits for the Manager: no crypto, no sockets.
// It records every path it is asked for and fails a build at the first
// hop whose relay is set to fail, with a *BuildError naming that hop.
type fakeBuilder struct {
	// delay is how long each build takes (virtual time under synctest).
	delay time.Duration

	// mu guards the following.
	mu    sync.Mutex
	paths [][]Hop
	built []*fakeCircuit
	fail  map[keys.IdentityPublicKey]bool
}

var errFakeRefused = errors.New("fake: connection refused")

func newFakeBuilder() *fakeBuilder {
	return &fakeBuilder{fail: map[keys.IdentityPublicKey]bool{}}
}

func (b *fakeBuilder) Build(ctx context.Context, path []Hop) (Circuit, error) {
	b.mu.Lock()
	b.paths = append(b.paths, slices.Clone(path))
	failAt := slices.IndexFunc(path, func(h Hop) bool { return b.fail[h.Identity] })
	b.mu.Unlock()
	if b.delay > 0 {
		t := time.NewTimer(b.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if failAt >= 0 {
		return nil, &BuildError{Hop: failAt, Err: errFakeRefused}
	}
	c := &fakeCircuit{hops: slices.Clone(path), done: make(chan struct{})}
	b.mu.Lock()
	b.built = append(b.built, c)
	b.mu.Unlock()
	return c, nil
}

// setFail makes builds through r fail (or succeed again).
func (b *fakeBuilder) setFail(r RelayInfo, fail bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fail[r.Hop.Identity] = fail
}

// builds returns how many builds were asked for, failed ones included.
func (b *fakeBuilder) builds() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.paths)
}

// pathsSince returns the paths asked for after the first n.
func (b *fakeBuilder) pathsSince(n int) [][]Hop {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.paths[n:])
}

// circuits returns the circuits built so far.
func (b *fakeBuilder) circuits() []*fakeCircuit {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.built)
}

// fakeCircuit is a Circuit whose streams are in-memory pipes.
type fakeCircuit struct {
	hops []Hop
	done chan struct{}
	once sync.Once

	// mu guards the following.
	mu      sync.Mutex
	streams int
}

func (c *fakeCircuit) Hops() []Hop           { return c.hops }
func (c *fakeCircuit) Done() <-chan struct{} { return c.done }

func (c *fakeCircuit) Streams() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.streams
}

func (c *fakeCircuit) OpenStream(ctx context.Context, target string) (net.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if isDone(c.done) {
		return nil, fmt.Errorf("fake: %w", ErrDestroyed)
	}
	c.streams++
	a, b := net.Pipe()
	return &fakeConn{Conn: a, peer: b, circ: c}, nil
}

// Close destroys the circuit (the network destroying it looks the same).
func (c *fakeCircuit) Close() error {
	c.once.Do(func() { close(c.done) })
	return nil
}

func (c *fakeCircuit) closed() bool { return isDone(c.done) }

// fakeConn is a stream on a fakeCircuit.
type fakeConn struct {
	net.Conn
	peer net.Conn
	circ *fakeCircuit
	once sync.Once
}

func (s *fakeConn) Close() error {
	s.once.Do(func() {
		s.Conn.Close()
		s.peer.Close()
		s.circ.mu.Lock()
		s.circ.streams--
		s.circ.mu.Unlock()
	})
	return nil
}

// circuitOf returns the circuit a stream from DialStream runs on.
func circuitOf(t *testing.T, c net.Conn) *fakeCircuit {
	t.Helper()
	fc, ok := c.(*fakeConn)
	if !ok {
		t.Fatalf("stream %T is not a fake one", c)
	}
	return fc.circ
}

// fakeRelay returns relay i, alone in its IPv4 /16; policy nil makes it a
// middle-only relay.
func fakeRelay(i int, policy *exitpolicy.Policy) RelayInfo {
	var id keys.IdentityPublicKey
	id[0], id[1] = 0xd4, byte(i)
	return RelayInfo{Hop: Hop{Identity: id, Addr: fmt.Sprintf("10.%d.0.1:9001", i)}, Policy: policy}
}

// fakeRelays returns middles middle-only relays followed by exits exits
// with the default exit policy.
func fakeRelays(middles, exits int) []RelayInfo {
	var rs []RelayInfo
	for i := range middles + exits {
		var p *exitpolicy.Policy
		if i >= middles {
			p = exitpolicy.Default()
		}
		rs = append(rs, fakeRelay(i, p))
	}
	return rs
}

// newFakeManager returns a Manager over b and relays, closed at the end of
// the test. cfg's Builder and Relays are filled in.
func newFakeManager(t *testing.T, b *fakeBuilder, relays []RelayInfo, cfg ManagerConfig) *Manager {
	t.Helper()
	cfg.Builder = b
	return newTestManager(t, relays, cfg)
}

// newTestManager returns a Manager over cfg.Builder and relays, closed at
// the end of the test.
func newTestManager(t *testing.T, relays []RelayInfo, cfg ManagerConfig) *Manager {
	t.Helper()
	cfg.Relays = func() []RelayInfo { return slices.Clone(relays) }
	m, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// hasRelay reports whether path goes through r.
func hasRelay(path []Hop, r RelayInfo) bool {
	return slices.ContainsFunc(path, func(h Hop) bool { return h.Identity == r.Hop.Identity })
}
