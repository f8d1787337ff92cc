package wasm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/darkmatter/darkmatter/apps/compute/examples/wordcount/words"
)

func TestWordCount(t *testing.T) {
	code, hash := module(t, wordcountPkg)
	r := newRuntime(t, Limits{})
	for _, in := range []string{"", "one", "  two words\n", "a\tb\nc\rd\ve\ff  g", strings.Repeat("lorem ipsum ", 1000)} {
		out, err := r.Run(context.Background(), hash, code, "count", []byte(in), nil)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if want := strconv.Itoa(words.Count([]byte(in))); string(out) != want {
			t.Fatalf("%.20q: got %q, want %q", in, out, want)
		}
	}
	if got, _ := r.Run(context.Background(), hash, code, "count", []byte("x y z"), nil); string(got) != "3" {
		t.Fatalf("got %q, want 3", got)
	}
	if !r.Cached(hash) {
		t.Fatal("module not cached after a run")
	}
}

func TestHashMismatchNeverRuns(t *testing.T) {
	code, hash := module(t, wordcountPkg)
	r := newRuntime(t, Limits{})
	bad := hash
	bad[0] ^= 1
	tampered := bytes.Clone(code)
	tampered[len(tampered)-1] ^= 1
	for _, c := range []struct {
		hash [32]byte
		code []byte
	}{{bad, code}, {hash, tampered}, {hash, nil}} {
		if _, err := r.Run(context.Background(), c.hash, c.code, "count", []byte("a b"), nil); !errors.Is(err, ErrHashMismatch) {
			t.Fatalf("got %v, want ErrHashMismatch", err)
		}
	}
	if n := r.instances.Load(); n != 0 {
		t.Fatalf("%d instances created for mismatching modules", n)
	}
	if r.Cached(hash) || r.Cached(bad) {
		t.Fatal("mismatching module compiled")
	}
}

func TestInputTooLarge(t *testing.T) {
	code, hash := module(t, wordcountPkg)
	r := newRuntime(t, Limits{MaxInput: 10})
	if _, err := r.Run(context.Background(), hash, code, "count", make([]byte, 11), nil); !errors.Is(err, ErrInputTooLarge) {
		t.Fatalf("got %v, want ErrInputTooLarge", err)
	}
	if out, err := r.Run(context.Background(), hash, code, "count", []byte("0123 56789"), nil); err != nil || string(out) != "2" {
		t.Fatalf("got %q %v", out, err)
	}
}

func TestTimeoutWhileOthersRun(t *testing.T) {
	wc, wcHash := module(t, wordcountPkg)
	evil, evilHash := module(t, evilPkg)
	r := newRuntime(t, Limits{}) // default Timeout, 5s
	loopDone := make(chan error, 1)
	go func() {
		_, err := r.Run(context.Background(), evilHash, evil, "loop", nil, nil)
		loopDone <- err
	}()
	for r.instances.Load() == 0 { // the loop's instance exists
		select {
		case err := <-loopDone:
			t.Fatalf("loop ended early: %v", err)
		default:
		}
		runtimeGosched()
	}
	if out, err := r.Run(context.Background(), wcHash, wc, "count", []byte("still serving"), nil); err != nil || string(out) != "2" {
		t.Fatalf("run beside the loop: %q %v", out, err)
	}
	// A run whose sub-call sees both runs in progress: the loop is still
	// going while it is served.
	var inFlight int
	sub := func(context.Context, [32]byte, string, []byte) ([]byte, error) {
		inFlight = len(r.runs)
		return []byte("ok"), nil
	}
	if out, err := r.Run(context.Background(), evilHash, evil, "subcalls", subcallsInput(1, [32]byte{}, "f", nil), sub); err != nil || string(out) != "ok\n" {
		t.Fatalf("run beside the loop: %q %v", out, err)
	}
	if inFlight != 2 {
		t.Fatalf("%d runs in progress during the second run, want 2 (loop ended early?)", inFlight)
	}
	if err := <-loopDone; !errors.Is(err, ErrTimeout) {
		t.Fatalf("loop: got %v, want ErrTimeout", err)
	}
}

func TestCallerCancelStopsRun(t *testing.T) {
	evil, hash := module(t, evilPkg)
	r := newRuntime(t, Limits{Timeout: 60e9})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for r.instances.Load() == 0 {
			runtimeGosched()
		}
		cancel()
	}()
	_, err := r.Run(ctx, hash, evil, "loop", nil, nil)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestMemoryBomb(t *testing.T) {
	evil, hash := module(t, evilPkg)
	wc, wcHash := module(t, wordcountPkg)
	r := newRuntime(t, Limits{})
	_, err := r.Run(context.Background(), hash, evil, "membomb", nil, nil)
	if !errors.Is(err, ErrMemory) {
		t.Fatalf("got %v, want ErrMemory", err)
	}
	t.Log(err)
	if out, err := r.Run(context.Background(), wcHash, wc, "count", []byte("fine"), nil); err != nil || string(out) != "1" {
		t.Fatalf("after the bomb: %q %v", out, err)
	}
}

func TestOutputLimit(t *testing.T) {
	evil, hash := module(t, evilPkg)
	r := newRuntime(t, Limits{MaxOutput: 100000})
	out, err := r.Run(context.Background(), hash, evil, "bigout", []byte("100000"), nil)
	if err != nil || len(out) != 100000 {
		t.Fatalf("at the limit: %d bytes, %v", len(out), err)
	}
	if _, err := r.Run(context.Background(), hash, evil, "bigout", []byte("100001"), nil); !errors.Is(err, ErrOutputTooLarge) {
		t.Fatalf("got %v, want ErrOutputTooLarge", err)
	}
}

func TestNoFunction(t *testing.T) {
	evil, hash := module(t, evilPkg)
	r := newRuntime(t, Limits{})
	for _, fn := range []string{"nope", "", "_initialize", "withparam", "memory"} {
		if _, err := r.Run(context.Background(), hash, evil, fn, nil, nil); !errors.Is(err, ErrNoFunction) {
			t.Fatalf("%q: got %v, want ErrNoFunction", fn, err)
		}
	}
	if n := r.instances.Load(); n != 0 {
		t.Fatalf("%d instances created for missing functions", n)
	}
}

func TestTrapAndLog(t *testing.T) {
	evil, hash := module(t, evilPkg)
	var mu sync.Mutex
	var logs []string
	r := newRuntime(t, Limits{Logf: func(f string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		logs = append(logs, fmt.Sprintf(f, a...))
	}})
	if _, err := r.Run(context.Background(), hash, evil, "panics", nil, nil); !errors.Is(err, ErrTrap) {
		t.Fatalf("got %v, want ErrTrap", err)
	}
	out, err := r.Run(context.Background(), hash, evil, "hello", nil, nil)
	if err != nil || string(out) != "hello" {
		t.Fatalf("hello: %q %v", out, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(logs) != 1 || !strings.Contains(logs[0], `"hello from evil"`) {
		t.Fatalf("logs %q", logs)
	}
}

func TestCacheBound(t *testing.T) {
	wc, wcHash := module(t, wordcountPkg)
	evil, evilHash := module(t, evilPkg)
	r := newRuntime(t, Limits{MaxModules: 1})
	for range 2 {
		if _, err := r.Run(context.Background(), wcHash, wc, "count", nil, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Run(context.Background(), evilHash, evil, "hello", nil, nil); err != nil {
			t.Fatal(err)
		}
		if r.Cached(wcHash) || !r.Cached(evilHash) {
			t.Fatal("cache holds more than MaxModules")
		}
	}
}

func TestInvalidModule(t *testing.T) {
	r := newRuntime(t, Limits{})
	// A module importing env.f () -> () and exporting it as "run": it
	// compiles, but the sandbox offers no such import.
	foreign := []byte{0, 'a', 's', 'm', 1, 0, 0, 0,
		1, 4, 1, 0x60, 0, 0, // type section: () -> ()
		2, 9, 1, 3, 'e', 'n', 'v', 1, 'f', 0, 0, // import env.f
		7, 7, 1, 3, 'r', 'u', 'n', 0, 0} // export "run" = func 0
	for _, code := range [][]byte{[]byte("not wasm"), foreign} {
		_, err := r.Run(context.Background(), sha256.Sum256(code), code, "run", nil, nil)
		if !errors.Is(err, ErrInvalidModule) {
			t.Fatalf("got %v, want ErrInvalidModule", err)
		}
		t.Log(err)
	}
}

// MaxRuns bounds runs at once: one more is refused while the others run,
// and accepted again once a slot is free.
func TestMaxRuns(t *testing.T) {
	evil, evilHash := module(t, evilPkg)
	wc, wcHash := module(t, wordcountPkg)
	r := newRuntime(t, Limits{MaxRuns: 1, Timeout: 60e9})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := r.Run(ctx, evilHash, evil, "loop", nil, nil)
		done <- err
	}()
	for r.instances.Load() == 0 {
		runtimeGosched()
	}
	if _, err := r.Run(context.Background(), wcHash, wc, "count", nil, nil); !errors.Is(err, ErrBusy) {
		t.Fatalf("second run: got %v, want ErrBusy", err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("loop: %v", err)
	}
	if out, err := r.Run(context.Background(), wcHash, wc, "count", []byte("a b"), nil); err != nil || string(out) != "2" {
		t.Fatalf("after the slot is free: %q %v", out, err)
	}
}
