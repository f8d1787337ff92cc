package wasm

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
)

func TestSubCall(t *testing.T) {
	evil, hash := module(t, evilPkg)
	r := newRuntime(t, Limits{MaxInput: 1000})
	target := [32]byte{1, 2, 3}
	var got struct {
		hash  [32]byte
		fn    string
		input []byte
	}
	sub := func(ctx context.Context, module [32]byte, fn string, input []byte) ([]byte, error) {
		got.hash, got.fn, got.input = module, fn, input
		switch fn {
		case "fail":
			return nil, errors.New("no executor")
		case "huge":
			return make([]byte, 1001), nil
		}
		return append([]byte("R:"), input...), nil
	}
	out, err := r.Run(context.Background(), hash, evil, "subcalls", subcallsInput(1, target, "render", []byte("xyz")), sub)
	if err != nil || string(out) != "R:xyz\n" {
		t.Fatalf("got %q %v", out, err)
	}
	if got.hash != target || got.fn != "render" || !bytes.Equal(got.input, []byte("xyz")) {
		t.Fatalf("SubCaller got %x %q %q", got.hash, got.fn, got.input)
	}
	for fn, want := range map[string]string{"fail": "err:-3\n", "huge": "err:-4\n"} {
		out, err := r.Run(context.Background(), hash, evil, "subcalls", subcallsInput(1, target, fn, nil), sub)
		if err != nil || string(out) != want {
			t.Fatalf("%s: got %q %v, want %q", fn, out, err, want)
		}
	}
}

func TestNilSubCallerRefuses(t *testing.T) {
	evil, hash := module(t, evilPkg)
	r := newRuntime(t, Limits{})
	out, err := r.Run(context.Background(), hash, evil, "subcalls", subcallsInput(2, [32]byte{}, "f", nil), nil)
	if err != nil || string(out) != "err:-1\nerr:-1\n" {
		t.Fatalf("got %q %v", out, err)
	}
}

// Sub-calls run in parallel up to MaxSubCalls; one more fails the run.
func TestSubCallLimit(t *testing.T) {
	evil, hash := module(t, evilPkg)
	r := newRuntime(t, Limits{MaxSubCalls: 3})
	var mu sync.Mutex
	started := 0
	all := make(chan struct{})
	sub := func(ctx context.Context, _ [32]byte, _ string, in []byte) ([]byte, error) {
		mu.Lock()
		if started++; started == 3 {
			close(all)
		}
		mu.Unlock()
		select { // every call waits for all three: they run at once
		case <-all:
			return in, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	out, err := r.Run(context.Background(), hash, evil, "subcalls", subcallsInput(3, [32]byte{}, "f", []byte("k")), sub)
	if err != nil || string(out) != "k\nk\nk\n" {
		t.Fatalf("3 sub-calls: %q %v", out, err)
	}
	_, err = r.Run(context.Background(), hash, evil, "subcalls", subcallsInput(4, [32]byte{}, "f", nil),
		func(context.Context, [32]byte, string, []byte) ([]byte, error) { return nil, nil })
	if !errors.Is(err, ErrSubCallLimit) {
		t.Fatalf("4 sub-calls: got %v, want ErrSubCallLimit", err)
	}
}

// A sub-call that never answers is cancelled when its run times out, and
// its goroutine ends with the run (goleak checks).
func TestSubCallCancelledWithRun(t *testing.T) {
	evil, hash := module(t, evilPkg)
	r := newRuntime(t, Limits{Timeout: 2e9})
	started, ended := make(chan struct{}), make(chan struct{})
	sub := func(ctx context.Context, _ [32]byte, _ string, _ []byte) ([]byte, error) {
		close(started)
		<-ctx.Done()
		close(ended)
		return nil, ctx.Err()
	}
	out, err := r.Run(context.Background(), hash, evil, "subcalls", subcallsInput(1, [32]byte{}, "f", nil), sub)
	if !errors.Is(err, ErrTimeout) || out != nil {
		t.Fatalf("got %q %v, want ErrTimeout", out, err)
	}
	select {
	case <-started:
	default:
		t.Fatal("the sub-call never started")
	}
	select {
	case <-ended:
	default:
		t.Fatal("sub-call still running after Run returned")
	}
}
