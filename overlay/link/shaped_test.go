package link

import (
	"bytes"
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/overlay/transport/memnet"
)

// shapedConn models a network path over a memnet conn, for tests in a
// synctest bubble: what is written leaves at rate bytes per second, in
// segments of shapedSegment bytes, and arrives delay later. A Write
// returns once its last segment has left, as a socket write returns once
// the kernel has taken the bytes; nothing else buffers, so the bytes ahead
// of a cell are exactly what the link itself has committed.
type shapedConn struct {
	net.Conn
	rate  int
	delay time.Duration

	line chan segment // the segments in flight, oldest first
	done chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

const shapedSegment = 16 << 10

type segment struct {
	at time.Time
	b  []byte
}

func newShapedConn(c net.Conn, rate int, delay time.Duration) *shapedConn {
	s := &shapedConn{Conn: c, rate: rate, delay: delay, line: make(chan segment, 1024), done: make(chan struct{})}
	s.wg.Go(s.deliver)
	return s
}

func (s *shapedConn) Write(b []byte) (int, error) {
	for off := 0; off < len(b); off += shapedSegment {
		seg := b[off:min(off+shapedSegment, len(b))]
		t := time.NewTimer(time.Duration(len(seg)) * time.Second / time.Duration(s.rate))
		select {
		case <-t.C:
		case <-s.done:
			t.Stop()
			return off, net.ErrClosed
		}
		select {
		case s.line <- segment{time.Now().Add(s.delay), bytes.Clone(seg)}:
		case <-s.done:
			return off, net.ErrClosed
		}
	}
	return len(b), nil
}

// deliver writes each segment to the memnet conn when it arrives.
func (s *shapedConn) deliver() {
	for {
		select {
		case seg := <-s.line:
			t := time.NewTimer(time.Until(seg.at))
			select {
			case <-t.C:
			case <-s.done:
				t.Stop()
				return
			}
			if _, err := s.Conn.Write(seg.b); err != nil {
				return
			}
		case <-s.done:
			return
		}
	}
}

func (s *shapedConn) Close() error {
	s.once.Do(func() { close(s.done) })
	err := s.Conn.Close()
	s.wg.Wait()
	return err
}

type shapedListener struct {
	net.Listener
	rate  int
	delay time.Duration
}

func (l shapedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newShapedConn(c, l.rate, l.delay), nil
}

// shapedListen returns a listen func for newPair-style helpers whose conns
// are shaped both ways: rate bytes per second, delay one way. Use it only
// inside a synctest bubble.
func shapedListen(rate int, delay time.Duration) func(testing.TB) (net.Listener, func(context.Context) (net.Conn, error)) {
	return func(t testing.TB) (net.Listener, func(context.Context) (net.Conn, error)) {
		n := &memnet.Network{BufferSize: 16 << 10}
		ln, err := n.Host("10.0.0.2").Listen(":7000")
		if err != nil {
			t.Fatal(err)
		}
		cli := n.Host("10.0.0.1")
		return shapedListener{ln, rate, delay}, func(ctx context.Context) (net.Conn, error) {
			c, err := cli.Dial(ctx, ln.Addr().String())
			if err != nil {
				return nil, err
			}
			return newShapedConn(c, rate, delay), nil
		}
	}
}
