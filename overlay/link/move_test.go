package link

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/circuit/protover"
)

// seqCells sends n cells on circuit circ carrying 0..n-1 from l, keeping
// the circuit's queue under its bound.
func seqCells(l *Link, circ uint32, n int) error {
	for i := range n {
		for l.CircuitQueueLen(circ) > 256 {
			time.Sleep(100 * time.Microsecond)
		}
		c := cell.New(circ, cell.CmdRelay)
		binary.BigEndian.PutUint32(c.Body(), uint32(i))
		if err := l.Send(c); err != nil {
			return err
		}
	}
	return nil
}

// seqChecker counts cells that arrive in sequence and reports the first
// one out of order.
type seqChecker struct {
	mu   sync.Mutex
	next uint32
	bad  error
	done chan struct{}
	want uint32
}

func newSeqChecker(want int) *seqChecker {
	return &seqChecker{done: make(chan struct{}), want: uint32(want)}
}

func (s *seqChecker) cell(_ *Link, c *cell.Cell) {
	v := binary.BigEndian.Uint32(c.Body())
	c.Free()
	s.mu.Lock()
	defer s.mu.Unlock()
	if v != s.next && s.bad == nil {
		s.bad = errors.New("cell out of order or lost")
	}
	s.next++
	if s.next == s.want {
		close(s.done)
	}
}

// A link moves to a second connection while cells stream both ways: none
// is lost or reordered, the old connection closes once both directions
// have moved, the addresses are the new connection's, and the link keeps
// working. The two ends call Move at different moments.
func TestMove(t *testing.T) {
	for _, nw := range networks {
		t.Run(nw.name, func(t *testing.T) {
			const n = 4000
			cliSeq, srvSeq := newSeqChecker(n), newSeqChecker(n)
			srvKey := newKey(t)
			p := newPair(t, nw.listen, &Config{Network: "test"}, &Config{Network: "test", Static: srvKey},
				newHandler(cliSeq.cell), newHandler(srvSeq.cell))
			if !p.cli.CanMove() || !p.srv.CanMove() || p.cli.MoveToken() != p.srv.MoveToken() {
				t.Fatal("both ends must be able to move, with the same token")
			}
			oldRemote := p.cli.RemoteAddr().String()
			ln, dial := nw.listen(t)
			defer ln.Close()
			accepted := make(chan net.Conn, 1)
			go func() {
				c, err := ln.Accept()
				if err == nil {
					accepted <- c
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
			defer cancel()
			c2cli, err := dial(ctx)
			if err != nil {
				t.Fatal(err)
			}
			c2srv := <-accepted

			var wg sync.WaitGroup
			errs := make(chan error, 2)
			wg.Go(func() { errs <- seqCells(p.cli, 7, n) })
			wg.Go(func() { errs <- seqCells(p.srv, 9, n) })
			time.Sleep(5 * time.Millisecond)
			if err := p.cli.Move(c2cli); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
			if err := p.srv.Move(c2srv); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			for range 2 {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			for _, s := range []*seqChecker{cliSeq, srvSeq} {
				select {
				case <-s.done:
				case <-time.After(ioTimeout):
					t.Fatalf("%d of %d cells arrived", s.next, n)
				}
				if s.bad != nil {
					t.Fatal(s.bad)
				}
			}
			waitUntil(t, func() bool { return p.cli.Moved() && p.srv.Moved() })
			if p.cli.RemoteAddr().String() != c2cli.RemoteAddr().String() || p.cli.RemoteAddr().String() == oldRemote && nw.name == "tcp" {
				t.Errorf("remote address %v after the move", p.cli.RemoteAddr())
			}
			// The old connection is closed, the link lives on.
			if _, err := p.cli.conn.Write([]byte{0}); err == nil {
				t.Error("the old connection is still open")
			}
			if err := p.cli.Move(c2cli); !errors.Is(err, ErrMoved) {
				t.Errorf("second Move: %v", err)
			}
			select {
			case <-p.cli.Done():
				t.Fatalf("the link closed: %v", p.cli.Err())
			default:
			}
		})
	}
}

// A peer that does not list LinkMove cannot be moved.
func TestMoveUnsupported(t *testing.T) {
	srvKey := newKey(t)
	p := newPair(t, memnetListen, &Config{Network: "test"}, &Config{Network: "test", Static: srvKey}, nil, nil)
	a, b := net.Pipe()
	defer b.Close()
	p.srv.peerProto = protover.New(map[protover.ID]string{protover.Link: "1"}) // an older peer
	if err := p.srv.Move(a); !errors.Is(err, ErrMoveUnsupported) {
		t.Fatalf("Move to a peer without LinkMove: %v", err)
	}
}

func waitUntil(t *testing.T, f func() bool) {
	t.Helper()
	for end := time.Now().Add(ioTimeout); !f(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("timed out")
		}
	}
}
