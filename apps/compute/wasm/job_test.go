package wasm

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestJobLimits(t *testing.T) {
	l := Limits{Timeout: time.Second, MaxOutput: 100, MaxSubCalls: 4}
	for _, c := range []struct {
		j    Job
		want Limits
	}{
		{Job{}, l},
		{Job{Timeout: time.Millisecond, MaxOutput: 10, MaxSubCalls: 1}, Limits{Timeout: time.Millisecond, MaxOutput: 10, MaxSubCalls: 1}},
		{Job{Timeout: time.Hour, MaxOutput: 1000, MaxSubCalls: 40}, l},
		{Job{Timeout: -1, MaxOutput: -1, MaxSubCalls: -1}, Limits{}},
	} {
		if got := c.j.limits(l); got.Timeout != c.want.Timeout || got.MaxOutput != c.want.MaxOutput || got.MaxSubCalls != c.want.MaxSubCalls {
			t.Errorf("%+v: got %v %d %d, want %v %d %d", c.j, got.Timeout, got.MaxOutput, got.MaxSubCalls,
				c.want.Timeout, c.want.MaxOutput, c.want.MaxSubCalls)
		}
	}
}

// A Job's Timeout, lower than the Runtime's, stops an infinite loop, and
// the error names it; a larger one is capped at the Runtime's.
func TestJobTimeout(t *testing.T) {
	evil, hash := module(t, evilPkg)
	r := newRuntime(t, Limits{Timeout: time.Hour})
	_, err := r.RunJob(context.Background(), Job{Hash: hash, Code: evil, Function: "loop", Timeout: 50 * time.Millisecond})
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "(50ms)") {
		t.Fatalf("got %v, want ErrTimeout (50ms)", err)
	}
	short := newRuntime(t, Limits{Timeout: 50 * time.Millisecond})
	_, err = short.RunJob(context.Background(), Job{Hash: hash, Code: evil, Function: "loop", Timeout: time.Hour})
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "(50ms)") {
		t.Fatalf("capped: got %v, want ErrTimeout (50ms)", err)
	}
	_, err = r.RunJob(context.Background(), Job{Hash: hash, Code: evil, Function: "hello", Timeout: -1})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("negative Timeout: got %v, want ErrTimeout", err)
	}
}

func TestJobMaxOutput(t *testing.T) {
	evil, hash := module(t, evilPkg)
	r := newRuntime(t, Limits{MaxOutput: 1000})
	run := func(n string, max int) error {
		out, err := r.RunJob(context.Background(), Job{Hash: hash, Code: evil, Function: "bigout", Input: []byte(n), MaxOutput: max})
		if want, _ := strconv.Atoi(n); err == nil && len(out) != want {
			t.Fatalf("bigout %s: %d bytes", n, len(out))
		}
		return err
	}
	for _, c := range []struct {
		n    string
		max  int
		want error
	}{
		{"100", 100, nil},
		{"101", 100, ErrOutputTooLarge},
		{"1000", 0, nil},
		{"1001", 5000, ErrOutputTooLarge}, // capped at the Runtime's
		{"1", -1, ErrOutputTooLarge},
	} {
		if err := run(c.n, c.max); !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("bigout %s, MaxOutput %d: got %v, want %v", c.n, c.max, err, c.want)
		}
	}
}

func TestJobMaxSubCalls(t *testing.T) {
	evil, hash := module(t, evilPkg)
	r := newRuntime(t, Limits{MaxSubCalls: 3})
	var calls atomic.Int32
	sub := func(_ context.Context, _ [32]byte, _ string, in []byte) ([]byte, error) {
		calls.Add(1)
		return in, nil
	}
	job := func(n, max int) Job {
		return Job{Hash: hash, Code: evil, Function: "subcalls", Input: subcallsInput(n, [32]byte{}, "f", []byte("k")), Sub: sub, MaxSubCalls: max}
	}
	if out, err := r.RunJob(context.Background(), job(1, 1)); err != nil || string(out) != "k\n" {
		t.Fatalf("1 sub-call of 1: %q %v", out, err)
	}
	if _, err := r.RunJob(context.Background(), job(2, 1)); !errors.Is(err, ErrSubCallLimit) {
		t.Fatalf("2 sub-calls of 1: got %v, want ErrSubCallLimit", err)
	}
	if _, err := r.RunJob(context.Background(), job(4, 10)); !errors.Is(err, ErrSubCallLimit) {
		t.Fatalf("4 sub-calls of 10 capped at 3: got %v, want ErrSubCallLimit", err)
	}
	calls.Store(0)
	if out, err := r.RunJob(context.Background(), job(2, -1)); err != nil || string(out) != "err:-1\nerr:-1\n" || calls.Load() != 0 {
		t.Fatalf("MaxSubCalls -1: %q %v, %d sub-calls made", out, err, calls.Load())
	}
}
