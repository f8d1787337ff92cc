package names

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestPoW(t *testing.T) {
	o := owner(1).Public()
	n, err := Solve(context.Background(), "alice", o, epoch, 12)
	if err != nil {
		t.Fatal(err)
	}
	if !CheckPoW("alice", o, epoch, n, 12) || !CheckPoW("alice", o, epoch, n, 0) {
		t.Fatal("solution refused")
	}
	// The work binds the name, the owner and the registration time.
	for name, ok := range map[string]bool{
		"other name":        CheckPoW("alicf", o, epoch, n, 12),
		"other owner":       CheckPoW("alice", owner(2).Public(), epoch, n, 12),
		"other registered":  CheckPoW("alice", o, epoch.Add(time.Second), n, 12),
		"other nonce":       CheckPoW("alice", o, epoch, n+1, 12) && CheckPoW("alice", o, epoch, n+2, 12) && CheckPoW("alice", o, epoch, n+3, 12),
		"higher difficulty": CheckPoW("alice", o, epoch, n, 40),
	} {
		if ok {
			t.Errorf("%s: still valid", name)
		}
	}
	// Solve from a fixed start returns the first valid nonce.
	first, err := solve(context.Background(), "alice", o, epoch.Unix(), 8, 0)
	if err != nil {
		t.Fatal(err)
	}
	for x := range first {
		if CheckPoW("alice", o, epoch, x, 8) {
			t.Fatalf("nonce %d valid before %d", x, first)
		}
	}
}

func TestSolveRefusesAndStops(t *testing.T) {
	o := owner(1).Public()
	for _, d := range []int{-1, MaxDifficulty + 1} {
		if _, err := Solve(context.Background(), "alice", o, epoch, d); err == nil {
			t.Errorf("difficulty %d accepted", d)
		}
	}
	if _, err := Solve(context.Background(), "Alice", o, epoch, 1); !errors.Is(err, ErrName) {
		t.Errorf("non-canonical name: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Solve(ctx, "alice", o, epoch, MaxDifficulty); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Solve: %v", err)
	}
}
