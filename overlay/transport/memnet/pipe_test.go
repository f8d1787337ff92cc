package memnet

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net"
	"testing"
)

// TestPipeRingModel drives a pipe with random read and write sizes and
// checks it against a plain byte slice, across wrap-arounds and growth.
func TestPipeRingModel(t *testing.T) {
	for _, max := range []int{1, 7, 4096, initialBufferSize, 3*initialBufferSize + 5} {
		rng := rand.New(rand.NewPCG(uint64(max), 1))
		p := newPipe(max)
		var model []byte
		var next byte
		scratch := make([]byte, 2*max+2)
		for range 4000 {
			if rng.IntN(2) == 0 {
				b := scratch[:rng.IntN(len(scratch))]
				for i := range b {
					b[i] = next
					next++
				}
				n, err := p.write(b)
				if err != nil {
					t.Fatalf("max %d: write: %v", max, err)
				}
				if want := min(len(b), max-len(model)); n != want {
					t.Fatalf("max %d: wrote %d of %d with %d buffered, want %d", max, n, len(b), len(model), want)
				}
				model = append(model, b[:n]...)
				next -= byte(len(b) - n)
			} else {
				b := scratch[:rng.IntN(len(scratch))]
				n, eof := p.read(b)
				if eof {
					t.Fatalf("max %d: unexpected eof", max)
				}
				if want := min(len(b), len(model)); n != want {
					t.Fatalf("max %d: read %d, want %d", max, n, want)
				}
				if !bytes.Equal(b[:n], model[:n]) {
					t.Fatalf("max %d: read wrong bytes", max)
				}
				model = model[n:]
			}
			if p.n != len(model) || len(p.buf) > max {
				t.Fatalf("max %d: n=%d len(buf)=%d, model %d", max, p.n, len(p.buf), len(model))
			}
		}
	}
}

func TestPipeGrowsLazily(t *testing.T) {
	p := newPipe(DefaultBufferSize)
	if len(p.buf) != 0 {
		t.Fatalf("new pipe has %d bytes of buffer", len(p.buf))
	}
	p.write([]byte("x"))
	if len(p.buf) != initialBufferSize {
		t.Fatalf("after a small write: %d bytes, want %d", len(p.buf), initialBufferSize)
	}
	p.write(make([]byte, DefaultBufferSize))
	if len(p.buf) != DefaultBufferSize || p.n != DefaultBufferSize {
		t.Fatalf("after filling: len(buf)=%d n=%d", len(p.buf), p.n)
	}
}

func TestPipeClose(t *testing.T) {
	p := newPipe(16)
	p.write([]byte("abc"))
	p.closeWrite()
	p.closeWrite()
	if _, err := p.write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after closeWrite: %v", err)
	}
	b := make([]byte, 8)
	if n, eof := p.read(b); n != 3 || eof {
		t.Fatalf("read = %d, %v", n, eof)
	}
	if n, eof := p.read(b); n != 0 || !eof {
		t.Fatalf("read at end = %d, %v", n, eof)
	}

	p = newPipe(16)
	p.write([]byte("abc"))
	p.closeRead()
	p.closeRead()
	if _, err := p.write([]byte("x")); !errors.Is(err, ErrBrokenPipe) {
		t.Fatalf("write after closeRead: %v", err)
	}
	if p.buf != nil || p.n != 0 {
		t.Fatal("closeRead kept the buffer")
	}
}
