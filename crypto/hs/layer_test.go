package hs

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
)

func TestLayerRefusesTamperedReplayedReordered(t *testing.T) {
	f := newFixture(t, 10)
	cl, sl := handshake(t, f)
	c := [][]byte{cl.Seal(nil, []byte("zero")), cl.Seal(nil, []byte("one")), cl.Seal(nil, []byte("two")), cl.Seal(nil, []byte("three"))}

	// Reordered: message 1 before message 0.
	if _, err := sl.Open(nil, c[1]); err == nil {
		t.Fatal("reordered message opened")
	}
	// Tampered anywhere: ciphertext and tag.
	for i := range c[0] {
		m := bytes.Clone(c[0])
		m[i] ^= 0x80
		if _, err := sl.Open(nil, m); err == nil {
			t.Fatalf("message modified at byte %d opened", i)
		}
	}
	for _, m := range [][]byte{nil, c[0][:15], c[0][:len(c[0])-1], append(bytes.Clone(c[0]), 0)} {
		if _, err := sl.Open(nil, m); err == nil {
			t.Fatalf("%d-byte message opened", len(m))
		}
	}
	// Failures do not advance the counter: the genuine message 0 opens.
	if pt, err := sl.Open(nil, c[0]); err != nil || string(pt) != "zero" {
		t.Fatalf("genuine message: %q, %v", pt, err)
	}
	// Replayed.
	if _, err := sl.Open(nil, c[0]); err == nil {
		t.Fatal("replayed message opened")
	}
	if pt, err := sl.Open(nil, c[1]); err != nil || string(pt) != "one" {
		t.Fatalf("message 1: %q, %v", pt, err)
	}
	// Dropped: message 2 never arrives, so 3 does not open.
	if _, err := sl.Open(nil, c[3]); err == nil {
		t.Fatal("message after a dropped one opened")
	}
	// Empty plaintexts are fine.
	cl2, sl2 := handshake(t, f)
	if pt, err := sl2.Open(nil, cl2.Seal(nil, nil)); err != nil || len(pt) != 0 {
		t.Fatalf("empty message: %q, %v", pt, err)
	}
	// Another session's layer does not open this one's messages.
	if _, err := sl2.Open(nil, cl.Seal(nil, []byte("x"))); err == nil {
		t.Fatal("another session's message opened")
	}
}

// Seal in one goroutine and Open in another, in both directions at once,
// as a joined circuit does (run with -race).
func TestLayerConcurrentDirections(t *testing.T) {
	f := newFixture(t, 11)
	cl, sl := handshake(t, f)
	const n = 200
	toService, toClient := make(chan []byte, n), make(chan []byte, n)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	send := func(l *Layer, ch chan<- []byte, who string) {
		defer wg.Done()
		for i := range n {
			ch <- l.Seal(nil, fmt.Appendf(nil, "%s %d", who, i))
		}
		close(ch)
	}
	recv := func(l *Layer, ch <-chan []byte, who string) {
		defer wg.Done()
		i := 0
		for ct := range ch {
			pt, err := l.Open(nil, ct)
			if err != nil || string(pt) != fmt.Sprintf("%s %d", who, i) {
				errs <- fmt.Errorf("%s %d: %q, %v", who, i, pt, err)
				return
			}
			i++
		}
	}
	wg.Add(4)
	go send(cl, toService, "c")
	go send(sl, toClient, "s")
	go recv(sl, toService, "c")
	go recv(cl, toClient, "s")
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// e2eLayer is circuit.E2ELayer, copied: crypto must not import circuit,
// even in tests.
type e2eLayer interface {
	Overhead() int
	Seal(dst, plaintext []byte) []byte
	Open(dst, ciphertext []byte) ([]byte, error)
}

var _ e2eLayer = (*Layer)(nil)
