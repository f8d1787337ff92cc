package memnet_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/overlay/transport/memnet"
)

func TestWriteDoesNotWaitForReader(t *testing.T) {
	var n memnet.Network
	c, s := pair(t, &n)
	msg := bytes.Repeat([]byte("x"), 100<<10)
	done := async(t, func() error {
		_, err := c.Write(msg) // nobody reads yet: must still return
		return err
	})
	if err := recv(t, done); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(s, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("read back: %v", err)
	}
}

func TestLargeWriteBlocksUntilDrained(t *testing.T) {
	n := memnet.Network{BufferSize: 1024}
	c, s := pair(t, &n)
	msg := make([]byte, 4096)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	var wrote int
	done := async(t, func() (err error) {
		wrote, err = c.Write(msg)
		return err
	})
	notDone(t, done, "Write larger than the buffer")
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(s, got); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, done); err != nil || wrote != len(msg) {
		t.Fatalf("Write = %d, %v", wrote, err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("data corrupted")
	}
}

func TestZeroLengthReadWrite(t *testing.T) {
	var n memnet.Network
	c, s := pair(t, &n)
	if n, err := c.Write(nil); n != 0 || err != nil {
		t.Errorf("Write(nil) = %d, %v", n, err)
	}
	if n, err := s.Read(nil); n != 0 || err != nil {
		t.Errorf("Read(nil) = %d, %v", n, err)
	}
}

// TestFullDuplex: both ends write more than the buffer holds at the same
// time while reading, which deadlocks unless the directions are independent.
func TestFullDuplex(t *testing.T) {
	n := memnet.Network{BufferSize: 4096}
	c, s := pair(t, &n)
	const size = 1 << 20
	var wg sync.WaitGroup
	sums := make([][32]byte, 4)
	run := func(i int, f func() error) {
		wg.Go(func() {
			if err := f(); err != nil {
				t.Error(err)
			}
		})
	}
	writer := func(conn net.Conn, seed uint64, sum *[32]byte) func() error {
		return func() error {
			h := sha256.New()
			w := io.MultiWriter(conn, h)
			_, err := io.CopyN(w, rand.NewChaCha8([32]byte{byte(seed)}), size)
			h.Sum(sum[:0])
			return err
		}
	}
	reader := func(conn net.Conn, sum *[32]byte) func() error {
		return func() error {
			h := sha256.New()
			_, err := io.CopyN(h, conn, size)
			h.Sum(sum[:0])
			return err
		}
	}
	run(0, writer(c, 1, &sums[0]))
	run(1, writer(s, 2, &sums[1]))
	run(2, reader(s, &sums[2]))
	run(3, reader(c, &sums[3]))
	wg.Wait()
	if sums[0] != sums[2] || sums[1] != sums[3] {
		t.Fatal("data differs")
	}
}

// TestTransfer64MiB moves 64 MiB with random write and read sizes and
// compares SHA-256 sums.
func TestTransfer64MiB(t *testing.T) {
	var n memnet.Network
	c, s := pair(t, &n)
	const size = 64 << 20
	start := time.Now()
	var sent [32]byte
	done := async(t, func() error {
		h := sha256.New()
		src := rand.NewChaCha8([32]byte{42})
		rng := rand.New(rand.NewPCG(1, 2))
		buf := make([]byte, 1<<20)
		for left := size; left > 0; {
			b := buf[:min(left, 1+rng.IntN(len(buf)))]
			src.Read(b)
			h.Write(b)
			if _, err := c.Write(b); err != nil {
				return err
			}
			left -= len(b)
		}
		h.Sum(sent[:0])
		return c.Close()
	})
	h := sha256.New()
	rng := rand.New(rand.NewPCG(3, 4))
	buf := make([]byte, 1<<20)
	total := 0
	for {
		k, err := s.Read(buf[:1+rng.IntN(len(buf))])
		h.Write(buf[:k])
		total += k
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := recv(t, done); err != nil {
		t.Fatal(err)
	}
	if total != size || !bytes.Equal(h.Sum(nil), sent[:]) {
		t.Fatalf("received %d bytes, hash mismatch", total)
	}
	t.Logf("64 MiB in %v (with hashing and random sizes)", time.Since(start))
}

// TestConcurrentWritersDoNotInterleave: Writes from many goroutines arrive
// whole, as with TCP.
func TestConcurrentWritersDoNotInterleave(t *testing.T) {
	n := memnet.Network{BufferSize: 1000}
	c, s := pair(t, &n)
	const writers, records, size = 8, 200, 3000 // records larger than the buffer
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			rec := make([]byte, size)
			for r := range records {
				for i := range rec {
					rec[i] = byte(w)
				}
				binary.BigEndian.PutUint32(rec, uint32(w<<16|r))
				if _, err := c.Write(rec); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	next := make([]int, writers)
	rec := make([]byte, size)
	for range writers * records {
		if _, err := io.ReadFull(s, rec); err != nil {
			t.Fatal(err)
		}
		id := binary.BigEndian.Uint32(rec)
		w, r := int(id>>16), int(id&0xffff)
		if w >= writers || r != next[w] {
			t.Fatalf("record %d from writer %d out of order (want %d)", r, w, next[w])
		}
		next[w]++
		for _, b := range rec[4:] {
			if b != byte(w) {
				t.Fatalf("record from writer %d interleaved with other data", w)
			}
		}
	}
	wg.Wait()
}

// TestConcurrentReaders: several goroutines reading one conn get every
// byte exactly once between them.
func TestConcurrentReaders(t *testing.T) {
	n := memnet.Network{BufferSize: 512}
	c, s := pair(t, &n)
	const size = 1 << 20
	var mu sync.Mutex
	var total int
	var sum uint64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			buf := make([]byte, 100)
			for {
				k, err := s.Read(buf)
				mu.Lock()
				total += k
				for _, b := range buf[:k] {
					sum += uint64(b)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	var want uint64
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i)
		want += uint64(data[i])
	}
	if _, err := c.Write(data); err != nil {
		t.Fatal(err)
	}
	c.Close()
	wg.Wait()
	if total != size || sum != want {
		t.Fatalf("readers got %d bytes (sum %d), want %d (sum %d)", total, sum, size, want)
	}
}

func TestCloseSemantics(t *testing.T) {
	var n memnet.Network
	c, s := pair(t, &n)
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	// The peer drains what was written, then reads io.EOF (not wrapped).
	got, err := io.ReadAll(s)
	if err != nil || string(got) != "hello" {
		t.Errorf("peer read %q, %v", got, err)
	}
	if k, err := s.Read(make([]byte, 1)); k != 0 || err != io.EOF {
		t.Errorf("peer read after EOF = %d, %v", k, err)
	}

	// The peer's writes fail: broken pipe.
	_, err = s.Write([]byte("x"))
	if !errors.Is(err, memnet.ErrBrokenPipe) || !errors.Is(err, syscall.EPIPE) {
		t.Errorf("peer write after Close: %v", err)
	}

	// Local reads, writes and deadline calls fail with net.ErrClosed.
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("read on closed conn: %v", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write on closed conn: %v", err)
	}
	var op *net.OpError
	if _, err := c.Write([]byte("x")); !errors.As(err, &op) || op.Net != "memnet" || op.Op != "write" {
		t.Errorf("write error is not a *net.OpError: %#v", err)
	}
	for _, set := range []func(time.Time) error{c.SetDeadline, c.SetReadDeadline, c.SetWriteDeadline} {
		if err := set(time.Now()); !errors.Is(err, net.ErrClosed) {
			t.Errorf("SetDeadline on closed conn: %v", err)
		}
	}
	// Addresses still work.
	if c.LocalAddr() == nil || c.RemoteAddr() == nil {
		t.Error("nil addr after Close")
	}
}

func TestCloseUnblocks(t *testing.T) {
	n := memnet.Network{BufferSize: 16}
	big := make([]byte, 1000)

	t.Run("Read/LocalClose", func(t *testing.T) {
		c, _ := pair(t, &n)
		done := async(t, func() error { _, err := c.Read(make([]byte, 1)); return err })
		notDone(t, done, "Read")
		c.Close()
		if err := recv(t, done); !errors.Is(err, net.ErrClosed) {
			t.Errorf("blocked Read after Close: %v", err)
		}
	})
	t.Run("Read/PeerClose", func(t *testing.T) {
		c, s := pair(t, &n)
		done := async(t, func() error { _, err := c.Read(make([]byte, 1)); return err })
		notDone(t, done, "Read")
		s.Close()
		if err := recv(t, done); err != io.EOF {
			t.Errorf("blocked Read after peer Close: %v", err)
		}
	})
	t.Run("Write/LocalClose", func(t *testing.T) {
		c, _ := pair(t, &n)
		var wrote int
		done := async(t, func() (err error) { wrote, err = c.Write(big); return err })
		notDone(t, done, "Write")
		c.Close()
		if err := recv(t, done); !errors.Is(err, net.ErrClosed) {
			t.Errorf("blocked Write after Close: %v", err)
		}
		if wrote != 16 {
			t.Errorf("partial write reported %d bytes, want 16", wrote)
		}
	})
	t.Run("Write/PeerClose", func(t *testing.T) {
		c, s := pair(t, &n)
		done := async(t, func() error { _, err := c.Write(big); return err })
		notDone(t, done, "Write")
		s.Close()
		if err := recv(t, done); !errors.Is(err, syscall.EPIPE) {
			t.Errorf("blocked Write after peer Close: %v", err)
		}
	})
}

func TestCloseWrite(t *testing.T) {
	var n memnet.Network
	c, s := pair(t, &n)
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok {
		t.Fatal("conn has no CloseWrite")
	}
	c.Write([]byte("request"))
	if err := cw.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write after CloseWrite: %v", err)
	}
	req, err := io.ReadAll(s)
	if err != nil || string(req) != "request" {
		t.Fatalf("server read %q, %v", req, err)
	}
	// The other direction still works.
	s.Write([]byte("response"))
	s.Close()
	resp, err := io.ReadAll(c)
	if err != nil || string(resp) != "response" {
		t.Fatalf("client read %q, %v", resp, err)
	}
	c.Close()
	if err := cw.CloseWrite(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("CloseWrite after Close: %v", err)
	}
}

func TestReadDeadline(t *testing.T) {
	var n memnet.Network
	c, s := pair(t, &n)
	buf := make([]byte, 10)

	// A deadline in the past fails at once, even with data buffered.
	s.Write([]byte("data"))
	c.SetReadDeadline(time.Now().Add(-time.Second))
	if _, err := c.Read(buf); !isTimeout(err) {
		t.Fatalf("read with past deadline: %v", err)
	}
	var op *net.OpError
	if _, err := c.Read(buf); !errors.As(err, &op) || op.Op != "read" || !op.Timeout() {
		t.Errorf("deadline error is not a timeout *net.OpError: %#v", err)
	}
	// Clearing it makes the data readable again; the conn is not broken.
	c.SetReadDeadline(time.Time{})
	if k, err := c.Read(buf); err != nil || string(buf[:k]) != "data" {
		t.Fatalf("read after clearing deadline = %q, %v", buf[:k], err)
	}

	// A future deadline fires while blocked.
	start := time.Now()
	c.SetReadDeadline(start.Add(50 * time.Millisecond))
	if _, err := c.Read(buf); !isTimeout(err) {
		t.Fatalf("blocked read: %v", err)
	}
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Errorf("deadline fired after %v", d)
	}

	// Moving the deadline into the past wakes a blocked Read.
	c.SetReadDeadline(time.Time{})
	done := async(t, func() error { _, err := c.Read(buf); return err })
	notDone(t, done, "Read")
	c.SetReadDeadline(time.Now())
	if err := recv(t, done); !isTimeout(err) {
		t.Errorf("read after moving deadline to now: %v", err)
	}

	// Extending the deadline while blocked keeps the Read waiting.
	c.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	done = async(t, func() error { _, err := c.Read(buf); return err })
	c.SetReadDeadline(time.Now().Add(time.Hour))
	notDone(t, done, "Read with extended deadline")
	s.Write([]byte("x"))
	if err := recv(t, done); err != nil {
		t.Errorf("read after extending the deadline: %v", err)
	}
}

func TestWriteDeadline(t *testing.T) {
	n := memnet.Network{BufferSize: 100}
	c, s := pair(t, &n)

	// A write that fits returns before any deadline.
	c.SetWriteDeadline(time.Now().Add(time.Hour))
	if _, err := c.Write(make([]byte, 60)); err != nil {
		t.Fatal(err)
	}
	// A write that does not fit times out, reporting the partial count.
	c.SetWriteDeadline(time.Now().Add(30 * time.Millisecond))
	k, err := c.Write(make([]byte, 100))
	if !isTimeout(err) || k != 40 {
		t.Fatalf("blocked write = %d, %v; want 40, timeout", k, err)
	}
	// Past deadline: fails at once.
	c.SetWriteDeadline(time.Now().Add(-time.Second))
	if k, err := c.Write([]byte("x")); !isTimeout(err) || k != 0 {
		t.Errorf("write with past deadline = %d, %v", k, err)
	}
	// The read side is unaffected, and clearing restores writes.
	if _, err := io.ReadFull(s, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	c.SetWriteDeadline(time.Time{})
	if _, err := c.Write([]byte("x")); err != nil {
		t.Errorf("write after clearing the deadline: %v", err)
	}
}

func TestSetDeadlineBoth(t *testing.T) {
	n := memnet.Network{BufferSize: 1}
	c, _ := pair(t, &n)
	c.SetDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); !isTimeout(err) {
		t.Errorf("read: %v", err)
	}
	if _, err := c.Write(make([]byte, 2)); !isTimeout(err) {
		t.Errorf("write: %v", err)
	}
}

// TestDeadlineStress sets and clears deadlines from one goroutine while
// another reads and writes, for the race detector.
func TestDeadlineStress(t *testing.T) {
	n := memnet.Network{BufferSize: 64}
	c, s := pair(t, &n)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			c.SetDeadline(time.Now().Add(time.Duration(rand.IntN(200)) * time.Microsecond))
			c.SetReadDeadline(time.Time{})
		}
	})
	wg.Go(func() { io.Copy(s, s) })
	buf := make([]byte, 100)
	for range 1000 {
		c.Write(buf)
		c.Read(buf[:1])
	}
	close(stop)
	c.Close()
	wg.Wait()
}
