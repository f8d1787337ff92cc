package safelog

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// recorder is a Logf sink that keeps every line.
type recorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *recorder) logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
}

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lines...)
}

func TestNilLogfIsSilent(t *testing.T) {
	var l Logf
	l.Printf("hello %d", 1) // must not panic
	if p := l.Prefix("x: "); p != nil {
		t.Fatalf("nil.Prefix = non-nil")
	}
	l.Prefix("x: ").Printf("still silent")
}

func TestPrintf(t *testing.T) {
	var r recorder
	Logf(r.logf).Printf("a=%d b=%s", 1, "two")
	if got := r.all(); len(got) != 1 || got[0] != "a=1 b=two" {
		t.Fatalf("lines = %q", got)
	}
}

func TestPrefix(t *testing.T) {
	var r recorder
	l := Logf(r.logf).Prefix("link: ").Prefix("hop 2: ")
	l.Printf("sent %d cells", 3)
	want := "link: hop 2: sent 3 cells"
	if got := r.all(); len(got) != 1 || got[0] != want {
		t.Fatalf("lines = %q, want %q", got, want)
	}
}

func TestPrefixPercentIsLiteral(t *testing.T) {
	var r recorder
	Logf(r.logf).Prefix("100% %s %d: ").Printf("x=%d", 7)
	want := "100% %s %d: x=7"
	if got := r.all(); len(got) != 1 || got[0] != want {
		t.Fatalf("lines = %q, want %q", got, want)
	}
	for _, l := range r.all() {
		if strings.Contains(l, "%!") {
			t.Fatalf("bad verb in %q", l)
		}
	}
}

func TestLogfConcurrent(t *testing.T) {
	var r recorder
	l := Logf(r.logf).Prefix("p: ")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 100 {
				l.Printf("%d %d %v", i, j, S("secret"))
			}
		})
	}
	wg.Wait()
	lines := r.all()
	if len(lines) != 800 {
		t.Fatalf("got %d lines, want 800", len(lines))
	}
	for _, line := range lines {
		if strings.Contains(line, "secret") {
			t.Fatalf("leaked: %q", line)
		}
	}
}
