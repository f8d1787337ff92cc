package gateway

import (
	"container/list"
	"math"
	"net/netip"
	"sync"
	"time"
)

// limiter is a token bucket per client, at most max of them: when a new
// client would exceed max, the one idle longest is dropped (it starts
// again with a full bucket if it comes back).
type limiter struct {
	rate  float64 // tokens per second
	burst float64 // bucket size
	max   int

	// mu guards the following.
	mu      sync.Mutex
	clients map[netip.Prefix]*list.Element // of *bucket
	lru     list.List                      // front: used most recently
}

type bucket struct {
	client netip.Prefix
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst, max int) *limiter {
	return &limiter{rate: rate, burst: float64(burst), max: max, clients: make(map[netip.Prefix]*list.Element)}
}

// allow takes a token from client's bucket at now. When there is none it
// returns false and how long until there is one.
func (l *limiter) allow(client netip.Prefix, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b *bucket
	if e, ok := l.clients[client]; ok {
		b = e.Value.(*bucket)
		l.lru.MoveToFront(e)
		if d := now.Sub(b.last); d > 0 {
			b.tokens = math.Min(l.burst, b.tokens+d.Seconds()*l.rate)
		}
		b.last = now
	} else {
		for len(l.clients) >= l.max {
			old := l.lru.Back()
			delete(l.clients, old.Value.(*bucket).client)
			l.lru.Remove(old)
		}
		b = &bucket{client: client, tokens: l.burst, last: now}
		l.clients[client] = l.lru.PushFront(b)
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	return false, wait
}

// len returns the number of clients held.
func (l *limiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}

// clientOf returns the rate-limited client of a request's RemoteAddr: the
// IPv4 address, or the /64 of an IPv6 address (one subscriber usually holds
// a whole /64). An address that does not parse (not a TCP listener) is the
// zero prefix, one client for all such requests.
func clientOf(remoteAddr string) netip.Prefix {
	var a netip.Addr
	if ap, err := netip.ParseAddrPort(remoteAddr); err == nil {
		a = ap.Addr()
	} else if a, err = netip.ParseAddr(remoteAddr); err != nil {
		return netip.Prefix{}
	}
	a = a.Unmap().WithZone("")
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}
