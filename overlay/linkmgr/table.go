package linkmgr

import (
	"bytes"
	"fmt"
	"github.com/darkmatter/darkmatter/circuit"
	"slices"
	"time"

	"github.com/darkmatter/darkmatter/overlay/link"
)

// record adds an open link to the table, chooses the peer's preferred link
// again and tells the Handler. It fails if the link or the manager closed
// meanwhile or the peer has too many links; the caller then closes l.
func (m *Manager) record(l *Link) error {
	m.mu.Lock()
	select {
	case <-l.Done():
		// It closed before we got here, and Closed may already have run:
		// recording it now would leave a dead link in the table.
		m.mu.Unlock()
		if err := l.Err(); err != nil {
			return err
		}
		return ErrClosed
	default:
	}
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	key := l.Peer()
	p := m.peers[key]
	if p == nil {
		p = &peer{}
		m.peers[key] = p
	}
	if n := len(p.links); n >= m.cfg.MaxLinksPerPeer {
		m.mu.Unlock()
		return fmt.Errorf("%w (%d)", ErrTooManyLinks, n)
	}
	m.seq++
	l.seq = m.seq
	p.links = append(p.links, l)
	m.all[l] = struct{}{}
	m.choose(p)
	m.mu.Unlock()
	if m.cfg.Handler != nil {
		m.cfg.Handler.LinkUp(l)
	}
	return nil
}

// linkClosed takes l out of the table (if it is there), lets the peer's other
// links take over, and tells the circuit layer and the Handler.
func (m *Manager) linkClosed(l *Link) {
	m.mu.Lock()
	_, inTable := m.all[l]
	if inTable {
		delete(m.all, l)
		key := l.Peer()
		p := m.peers[key]
		p.links = slices.DeleteFunc(p.links, func(x *Link) bool { return x == l })
		if len(p.links) == 0 {
			delete(m.peers, key)
		} else {
			m.choose(p)
		}
	}
	m.mu.Unlock()
	m.release(l.slot)
	l.mu.Lock()
	if l.timer != nil {
		l.timer.Stop()
	}
	l.mu.Unlock()
	m.cfg.Circuits.ChannelClosed(l)
	if inTable && m.cfg.Handler != nil {
		m.cfg.Handler.LinkClosed(l)
	}
}

// choose picks p's preferred link and retires the others. m.mu must be
// held.
func (m *Manager) choose(p *peer) {
	best := p.links[0]
	for _, l := range p.links[1:] {
		if m.better(l, best) {
			best = l
		}
	}
	p.preferred = best
	for _, l := range p.links {
		l.mu.Lock()
		if l == best {
			l.retired = false
			if l.timer != nil {
				l.timer.Stop()
			}
		} else if !l.retired {
			l.retired = true
			l.retireLaterLocked()
		}
		l.mu.Unlock()
	}
}

// better reports whether new circuits should use a rather than b, two links
// to one peer. Both ends of the links must reach the same answer on their
// own (see the package documentation). m.mu must be held (for seq).
func (m *Manager) better(a, b *Link) bool {
	// Both ends see the same version and suite on one link.
	if va, vb := a.ll.Load().Version(), b.ll.Load().Version(); va != vb {
		return va > vb
	}
	if sa, sb := a.ll.Load().Suite(), b.ll.Load().Suite(); sa != sb {
		return sa == link.SuiteAESGCM
	}
	if a.Initiator() != b.Initiator() {
		// The link initiated by the side with the lower static key wins.
		// A client has no long-term key, but it never accepts links, so
		// its links to one peer all have the same initiator.
		peer := a.Peer()
		weAreLower := m.ourKey != nil && bytes.Compare(m.ourKey[:], peer[:]) < 0
		return a.Initiator() == weAreLower
	}
	return a.seq > b.seq
}

// retireLaterLocked closes l after ReplaceGrace unless it is preferred
// again or carries a circuit by then. l.mu must be held.
func (l *Link) retireLaterLocked() {
	if l.timer != nil {
		l.timer.Reset(l.m.cfg.ReplaceGrace)
		return
	}
	l.timer = time.AfterFunc(l.m.cfg.ReplaceGrace, func() { l.m.retire(l) })
}

// retire closes l if it is still retired and carries no circuits.
func (m *Manager) retire(l *Link) {
	m.mu.Lock()
	_, open := m.all[l]
	if m.closed || !open {
		m.mu.Unlock()
		return
	}
	m.wg.Add(1)
	m.mu.Unlock()
	defer m.wg.Done()
	// The circuit layer knows exactly which circuits use the link; the
	// CREATE/DESTROY count is the fallback for a Circuits that cannot say.
	l.mu.Lock()
	n := len(l.circs)
	l.mu.Unlock()
	if cc, ok := m.cfg.Circuits.(channelCounter); ok {
		n = cc.ChannelCircuits(l)
	}
	l.mu.Lock()
	retired := l.retired
	if retired && n > 0 {
		l.retireLaterLocked() // look again after another grace period
	}
	l.mu.Unlock()
	if retired && n == 0 {
		m.logf.Printf("linkmgr: closing a link that another link to its peer replaced")
		l.Close()
	}
}

// channelCounter is implemented by a Circuits that knows how many circuits
// use a channel (*circuit.Switch does).
type channelCounter interface {
	ChannelCircuits(ch circuit.Channel) int
}
