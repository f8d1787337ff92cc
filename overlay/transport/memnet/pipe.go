package memnet

import (
	"net"
	"sync"
)

// initialBufferSize is where a pipe's ring starts; it doubles up to the
// pipe's max as data piles up, so idle conns stay small.
const initialBufferSize = 16 << 10

// pipe is one direction of a conn: a bounded ring buffer with a writer end
// and a reader end. The conn allows one Read and one Write at a time, so
// each of dataCh and spaceCh has at most one waiter.
type pipe struct {
	max     int           // most bytes buffered
	dataCh  chan struct{} // cap 1; signalled when data is added
	spaceCh chan struct{} // cap 1; signalled when room is made
	rdone   chan struct{} // closed when the reader end closes
	wdone   chan struct{} // closed when the writer end closes

	mu      sync.Mutex // guards the following
	buf     []byte     // ring; len(buf) grows up to max
	head    int        // index of the first buffered byte
	n       int        // bytes buffered
	rclosed bool       // reader end closed: writes fail, data is dropped
	wclosed bool       // writer end closed: reads drain, then io.EOF
}

func newPipe(max int) *pipe {
	return &pipe{
		max:     max,
		dataCh:  make(chan struct{}, 1),
		spaceCh: make(chan struct{}, 1),
		rdone:   make(chan struct{}),
		wdone:   make(chan struct{}),
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// read copies buffered bytes into b. It returns n == 0 and eof == false when
// the caller must wait for data.
func (p *pipe) read(b []byte) (n int, eof bool) {
	p.mu.Lock()
	if p.n == 0 {
		eof = p.wclosed
		p.mu.Unlock()
		return 0, eof
	}
	n = min(p.n, len(b))
	c := copy(b[:n], p.buf[p.head:])
	copy(b[c:n], p.buf)
	p.head = (p.head + n) % len(p.buf)
	p.n -= n
	if p.n == 0 {
		p.head = 0
	}
	p.mu.Unlock()
	signal(p.spaceCh)
	return n, false
}

// write copies as much of b as fits. It returns n == 0 and a nil error when
// the caller must wait for room.
func (p *pipe) write(b []byte) (n int, err error) {
	p.mu.Lock()
	switch {
	case p.wclosed:
		p.mu.Unlock()
		return 0, net.ErrClosed
	case p.rclosed:
		p.mu.Unlock()
		return 0, ErrBrokenPipe
	case len(b) == 0:
		p.mu.Unlock()
		return 0, nil
	}
	if len(p.buf)-p.n < len(b) && len(p.buf) < p.max {
		p.grow(p.n + len(b))
	}
	n = min(len(p.buf)-p.n, len(b))
	if n == 0 {
		p.mu.Unlock()
		return 0, nil
	}
	tail := (p.head + p.n) % len(p.buf)
	c := copy(p.buf[tail:], b[:n])
	copy(p.buf, b[c:n])
	p.n += n
	p.mu.Unlock()
	signal(p.dataCh)
	return n, nil
}

// grow enlarges the ring to hold want bytes if max allows, doubling so that
// growth costs amortised O(1) per byte. p.mu must be held.
func (p *pipe) grow(want int) {
	size := max(len(p.buf)*2, initialBufferSize, want)
	size = min(size, p.max)
	buf := make([]byte, size)
	c := copy(buf, p.buf[p.head:min(p.head+p.n, len(p.buf))])
	copy(buf[c:p.n], p.buf)
	p.buf, p.head = buf, 0
}

// closeRead closes the reader end: buffered data is dropped and later
// writes fail with ErrBrokenPipe.
func (p *pipe) closeRead() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rclosed {
		return
	}
	p.rclosed = true
	p.buf, p.head, p.n = nil, 0, 0
	close(p.rdone)
}

// closeWrite closes the writer end: the reader drains what is buffered and
// then reads io.EOF.
func (p *pipe) closeWrite() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.wclosed {
		return
	}
	p.wclosed = true
	close(p.wdone)
}
