package linkmgr

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/darkmatter/darkmatter/circuit/protover"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/safelog"
	"github.com/darkmatter/darkmatter/overlay/link"
	"github.com/darkmatter/darkmatter/overlay/transport"
)

// Channel returns the preferred link to the relay with link key lk,
// dialling addr ("scheme://host:port" or a bare tcp "host:port") if there is
// none; concurrent calls for one relay at one address share one dial. It
// checks that the relay's HELLO descriptor is signed by identity and names
// lk. Which addresses may be dialled is the caller's policy.
func (m *Manager) Channel(ctx context.Context, identity keys.IdentityPublicKey, lk keys.LinkPublicKey, addr string) (*Link, error) {
	l, err := m.linkTo(ctx, identity, lk, addr)
	if err != nil {
		return nil, err
	}
	if err := checkRelay(l, identity, lk, addr); err != nil {
		return nil, err
	}
	return l, nil
}

// Connected returns the preferred open link to the relay with link key
// lk if its HELLO descriptor is identity's, else nil. It never dials.
func (m *Manager) Connected(identity keys.IdentityPublicKey, lk keys.LinkPublicKey) *Link {
	m.mu.Lock()
	p := m.peers[lk]
	var l *Link
	if p != nil {
		l = p.preferred
	}
	m.mu.Unlock()
	if l == nil || checkRelay(l, identity, lk, "") != nil {
		return nil
	}
	return l
}

// checkRelay checks that l's peer presented a descriptor of identity for
// link key lk.
func checkRelay(l *Link, identity keys.IdentityPublicKey, lk keys.LinkPublicKey, addr string) error {
	if d := l.Descriptor(); d == nil || d.Identity != identity || d.Link != lk {
		return fmt.Errorf("%w (%v)", ErrWrongRelay, safelog.S(addr))
	}
	return nil
}

func (m *Manager) linkTo(ctx context.Context, identity keys.IdentityPublicKey, lk keys.LinkPublicKey, addr string) (*Link, error) {
	a, err := transport.ParseAddr(addr)
	if err != nil {
		return nil, fmt.Errorf("linkmgr: dial %v: %w", safelog.S(addr), err)
	}
	key := dialKey{peer: lk, addr: a}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	if p := m.peers[lk]; p != nil {
		l := p.preferred
		m.mu.Unlock()
		return l, nil
	}
	if p := m.dialing[key]; p != nil {
		m.mu.Unlock()
		select {
		case <-p.done:
			return p.l, p.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	p := &pendingDial{done: make(chan struct{})}
	m.dialing[key] = p
	m.mu.Unlock()

	p.l, p.err = m.dial(ctx, identity, lk, addr)
	m.mu.Lock()
	delete(m.dialing, key)
	if peer := m.peers[lk]; p.err != nil && peer != nil {
		// The peer dialled us meanwhile, or a dial to another of its
		// addresses succeeded (and our link may have lost to that one):
		// use its link.
		p.l, p.err = peer.preferred, nil
	}
	m.mu.Unlock()
	close(p.done)
	return p.l, p.err
}

// Dial opens a new link to the relay with link key lk at addr, even if one
// is open already: the preference rule (package documentation) decides
// which of them new circuits use. It checks the relay's descriptor as
// Channel does. Close cancels it.
func (m *Manager) Dial(ctx context.Context, identity keys.IdentityPublicKey, lk keys.LinkPublicKey, addr string) (*Link, error) {
	l, err := m.dial(ctx, identity, lk, addr)
	if err != nil {
		return nil, err
	}
	if err := checkRelay(l, identity, lk, addr); err != nil {
		return nil, err
	}
	return l, nil
}

// dial opens and records a new link.
func (m *Manager) dial(ctx context.Context, identity keys.IdentityPublicKey, lk keys.LinkPublicKey, addr string) (*Link, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	m.wg.Add(1)
	m.mu.Unlock()
	defer m.wg.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(m.ctx, cancel)
	defer stop()

	t, a, err := m.cfg.Transports.Lookup(addr)
	if err != nil {
		return nil, fmt.Errorf("linkmgr: dial %v: %w", safelog.S(addr), err)
	}
	cfg := m.linkConfig()
	if ds := m.cfg.Descriptors; ds != nil {
		// A relay whose signed descriptor says it prefers AES never asks
		// for ChaChaPoly: such an answer is a downgrade attempt.
		if d := ds.Get(identity.NodeID()); d != nil && d.Link == lk {
			cfg.PeerPrefersAES = d.Protocols.Supports(protover.LinkAES, 1)
		}
	}
	var dialErr error
	dial := func(ctx context.Context) (net.Conn, error) {
		var c net.Conn
		var err error
		if pd, ok := t.(transport.PeerDialer); ok {
			c, err = pd.DialPeer(ctx, a.HostPort, lk)
		} else {
			c, err = t.Dial(ctx, a.HostPort)
		}
		dialErr = err
		return c, err
	}
	l := m.newLink(a)
	ll, err := link.Connect(ctx, dial, cfg, lk, (*handler)(l))
	if err != nil {
		if dialErr != nil && errors.Is(err, dialErr) {
			return nil, fmt.Errorf("linkmgr: dial %v: %w", safelog.S(addr), safelog.Scrub(err))
		}
		return nil, fmt.Errorf("linkmgr: link to %v: %w", safelog.S(addr), err)
	}
	l.opened(ll)
	if err := m.record(l); err != nil {
		ll.Close()
		return nil, fmt.Errorf("linkmgr: link to %v: %w", safelog.S(addr), err)
	}
	return l, nil
}
