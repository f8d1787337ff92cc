package circuit

import (
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/crypto/keys"
)

// Measured bandwidth (spec/circuits.md §1.1): a client caps the bandwidth a
// relay advertises by what it saw through it. A stream that read at least
// minMeasureBytes (twice a stream window, so that most of it crossed the
// circuit while it was read, not from our own queue) over at least
// minMeasureTime gives a throughput every
// relay of its circuit sustained; a relay's measurement is the highest such
// throughput seen through it. A relay that advertises far more than any
// circuit through it ever carried thus loses the weight it claimed.
const (
	minMeasureBytes = 2 * StreamWindow * cell.MaxData
	minMeasureTime  = 10 * time.Millisecond
)

// noteReadLocked records n bytes read now. st.mu is held.
func (st *Stream) noteReadLocked(n int) {
	now := time.Now()
	if st.firstRead.IsZero() {
		st.firstRead = now
	}
	st.lastRead = now
	st.nread += uint64(n)
}

// reportThroughput hands what the stream read to its measure function,
// once.
func (st *Stream) reportThroughput() {
	st.mu.Lock()
	f, n, d := st.measure, st.nread, st.lastRead.Sub(st.firstRead)
	st.measure = nil
	st.mu.Unlock()
	if f != nil {
		f(n, d)
	}
}

// measureStream makes s report its throughput to the relays of hops.
func (m *Manager) measureStream(s *Stream, hops []Hop) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.measure = func(n uint64, d time.Duration) { m.noteThroughput(hops, n, d) }
}

// noteThroughput raises the measured bandwidth of each relay of hops to
// what a stream through them carried, if it carried enough to tell.
func (m *Manager) noteThroughput(hops []Hop, n uint64, d time.Duration) {
	if n < minMeasureBytes || d < minMeasureTime {
		return
	}
	rate := uint32(min(float64(n)/d.Seconds(), float64(^uint32(0))))
	for _, h := range hops {
		m.mu.Lock()
		cur := m.path.measured[h.Identity]
		m.mu.Unlock()
		if rate > cur {
			m.NoteMeasured(h.Identity, rate)
		}
	}
}

// Measured returns the bandwidth measured through relay id, 0 if none.
func (m *Manager) Measured(id keys.IdentityPublicKey) uint32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.path.measured[id]
}
