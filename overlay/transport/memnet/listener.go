package memnet

import (
	"net"
	"sync"
)

// listener is a memnet net.Listener.
type listener struct {
	n     *Network
	addr  *Addr
	queue chan *conn    // server ends of dialled conns, cap Backlog
	done  chan struct{} // closed by Close

	mu     sync.Mutex // guards the following
	closed bool
	space  chan struct{} // closed and replaced when Accept makes room
}

// enqueue queues c for Accept and records the dial. If the queue is full
// it returns queued == false and a channel that is closed when Accept next
// makes room.
func (l *listener) enqueue(c *conn, rec DialRecord) (queued bool, space <-chan struct{}, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false, nil, ErrConnRefused
	}
	// Only enqueue sends on l.queue, under l.mu, so this send cannot block.
	if len(l.queue) == cap(l.queue) {
		return false, l.space, nil
	}
	l.n.mu.Lock()
	l.n.dials = append(l.n.dials, rec)
	l.n.mu.Unlock()
	l.queue <- c
	return true, nil, nil
}

// Accept waits for and returns the next dialled conn. After Close it returns
// an error matching net.ErrClosed.
func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.queue:
		l.mu.Lock()
		closed := l.closed
		close(l.space)
		l.space = make(chan struct{})
		l.mu.Unlock()
		if closed {
			c.Close()
			return nil, l.opErr(net.ErrClosed)
		}
		return c, nil
	case <-l.done:
		return nil, l.opErr(net.ErrClosed)
	}
}

// Close stops the listener, frees its port, and closes the conns that were
// dialled but not yet accepted (their dialers read io.EOF). Blocked Accept
// calls return net.ErrClosed. Close is idempotent.
func (l *listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.done)
	l.mu.Unlock()

	l.n.mu.Lock()
	delete(l.n.listeners, l.addr.AddrPort)
	delete(l.n.ports, l.addr.AddrPort)
	l.n.mu.Unlock()

	// No enqueue can add to the queue now that closed is set.
	for {
		select {
		case c := <-l.queue:
			c.Close()
		default:
			return nil
		}
	}
}

// Addr returns the listener's address, with the host's IP and the bound port.
func (l *listener) Addr() net.Addr { return l.addr }

func (l *listener) opErr(err error) error {
	return &net.OpError{Op: "accept", Net: "memnet", Addr: l.addr, Err: err}
}
