package circuit

import (
	"sync"
	"time"
)

// recentIDs is how many circuit IDs a channel remembers as recently
// destroyed or answered (256 bytes per channel).
const recentIDs = 64

// idRing remembers the last recentIDs circuit IDs added; 0, never a
// circuit ID, marks an empty slot. Its owner serialises calls.
type idRing struct {
	ids  [recentIDs]uint32
	next int
}

func (r *idRing) has(id uint32) bool {
	for _, x := range r.ids {
		if x == id {
			return true
		}
	}
	return false
}

func (r *idRing) add(id uint32) {
	r.ids[r.next] = id
	r.next = (r.next + 1) % len(r.ids)
}

// replayFilter remembers the client ephemeral keys of recent CREATE
// handshakes (the first 32 bytes of message 1, spec/circuits.md §3), so a
// replayed message 1 makes no second circuit. An honest client never
// reuses an ephemeral key, and a message with a seen key but other bytes
// fails the handshake anyway.
//
// It keeps two generations: keys go into cur; when cur holds max/2 keys or
// is older than window, it becomes old and a new cur starts. So a key is
// remembered for at least window unless max/2 newer keys pushed it out,
// and at most 2×window; memory stays below max keys.
type replayFilter struct {
	max    int
	window time.Duration

	// mu guards the following.
	mu       sync.Mutex
	cur, old map[[32]byte]struct{}
	curStart time.Time
}

func newReplayFilter(max int, window time.Duration) *replayFilter {
	return &replayFilter{max: max, window: window}
}

// rotate moves to a new generation if cur is full or old. The caller
// holds f.mu.
func (f *replayFilter) rotate(now time.Time) {
	age := now.Sub(f.curStart)
	switch {
	case f.cur == nil:
		f.cur, f.curStart = make(map[[32]byte]struct{}), now
	case age >= 2*f.window:
		// Idle for a long time: everything is older than the window.
		f.cur, f.old, f.curStart = make(map[[32]byte]struct{}), nil, now
	case age >= f.window || len(f.cur) >= f.max/2:
		f.old, f.cur, f.curStart = f.cur, make(map[[32]byte]struct{}), now
	}
}

// seen reports whether key is remembered.
func (f *replayFilter) seen(key *[32]byte, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rotate(now)
	_, a := f.cur[*key]
	_, b := f.old[*key]
	return a || b
}

// add remembers key; false if it was already remembered (a replay).
func (f *replayFilter) add(key *[32]byte, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rotate(now)
	if _, ok := f.cur[*key]; ok {
		return false
	}
	if _, ok := f.old[*key]; ok {
		return false
	}
	f.cur[*key] = struct{}{}
	return true
}
