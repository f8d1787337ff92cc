package hs

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"golang.org/x/crypto/blake2b"

	"github.com/darkmatter/darkmatter/crypto/hsblind"
)

var (
	powSeed    = [32]byte{0x50, 0x4f, 0x57, 31: 1}
	powBlinded = hsblind.BlindedPublicKey{0xb1, 31: 2}
)

// powHash is the spec's hash, spelled out.
func powHash(seed [32]byte, b hsblind.BlindedPublicKey, effort uint32, nonce [16]byte) [32]byte {
	in := []byte("darkmatter pow v1\x00")
	in = append(in, seed[:]...)
	in = append(in, b[:]...)
	in = binary.BigEndian.AppendUint32(in, effort)
	in = append(in, nonce[:]...)
	return blake2b.Sum256(in)
}

func TestPoWEffortZero(t *testing.T) {
	for _, n := range [][16]byte{{}, {1}, {0xff, 15: 0xff}} {
		if !CheckPoW(powSeed, powBlinded, 0, n) {
			t.Fatal("effort 0 refused a nonce")
		}
	}
	n, err := SolvePoW(context.Background(), powSeed, powBlinded, 0)
	if err != nil || n != ([16]byte{}) {
		t.Fatalf("SolvePoW effort 0: %x, %v", n, err)
	}
}

func TestPoWSolveCheck(t *testing.T) {
	ctx := context.Background()
	for _, effort := range []uint32{1, 2, 1000, 5000} {
		n, err := SolvePoW(ctx, powSeed, powBlinded, effort)
		if err != nil {
			t.Fatal(err)
		}
		if !CheckPoW(powSeed, powBlinded, effort, n) {
			t.Fatalf("effort %d: solution refused", effort)
		}
		h := powHash(powSeed, powBlinded, effort, n)
		if uint64(binary.BigEndian.Uint32(h[:4]))*uint64(effort) > math.MaxUint32 {
			t.Fatalf("effort %d: solution does not meet the spec's condition", effort)
		}
	}
}

// With fixed inputs every outcome below is fixed; each would be wrong with
// probability about 1/1000 or less if the check were random.
func TestPoWWrongNonceFails(t *testing.T) {
	const effort = 1000
	n, err := solvePoW(context.Background(), powSeed, powBlinded, effort, [16]byte{})
	if err != nil {
		t.Fatal(err)
	}
	if !CheckPoW(powSeed, powBlinded, effort, n) {
		t.Fatal("solution refused")
	}
	// The first solution counting from zero: every nonce before it fails.
	first := binary.BigEndian.Uint64(n[8:])
	for i := range first {
		var m [16]byte
		binary.BigEndian.PutUint64(m[8:], i)
		if CheckPoW(powSeed, powBlinded, effort, m) {
			t.Fatalf("nonce %d accepted before the first solution %d", i, first)
		}
	}
	// The solution is bound to everything in the hash.
	m := n
	m[0] ^= 1
	for name, ok := range map[string]bool{
		"other nonce":       CheckPoW(powSeed, powBlinded, effort, m),
		"other seed":        CheckPoW([32]byte{1}, powBlinded, effort, n),
		"other blinded key": CheckPoW(powSeed, hsblind.BlindedPublicKey{1}, effort, n),
		"higher effort":     CheckPoW(powSeed, powBlinded, 1<<31, n),
	} {
		if ok {
			t.Errorf("%s accepted", name)
		}
	}
	// The fraction of valid nonces is 1/effort: 100 expected in 100000.
	valid := 0
	for i := range uint64(100000) {
		var m [16]byte
		binary.BigEndian.PutUint64(m[:8], i)
		if CheckPoW(powSeed, powBlinded, effort, m) {
			valid++
		}
	}
	if valid < 60 || valid > 140 {
		t.Fatalf("%d of 100000 nonces valid at effort %d, want about 100", valid, effort)
	}
}

func TestPoWThreshold(t *testing.T) {
	for _, c := range []struct {
		prefix uint32
		effort uint32
		ok     bool
	}{
		{math.MaxUint32, 1, true},
		{0x7fffffff, 2, true},
		{0x80000000, 2, false},
		{0, math.MaxUint32, true},
		{1, math.MaxUint32, true},
		{2, math.MaxUint32, false},
		{4294967, 1000, true},
		{4294968, 1000, false},
	} {
		var h [32]byte
		binary.BigEndian.PutUint32(h[:], c.prefix)
		if got := powValid(&h, c.effort); got != c.ok {
			t.Errorf("prefix %#x effort %d: %v", c.prefix, c.effort, got)
		}
	}
}

func TestPoWCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := SolvePoW(ctx, powSeed, powBlinded, math.MaxUint32); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}

// The nonce counter carries from the low to the high half.
func TestPoWCounterCarry(t *testing.T) {
	start := [16]byte{8: 0xff, 9: 0xff, 10: 0xff, 11: 0xff, 12: 0xff, 13: 0xff, 14: 0xff, 15: 0xff}
	n, err := solvePoW(context.Background(), powSeed, powBlinded, 200, start)
	if err != nil {
		t.Fatal(err)
	}
	if n != start && (n[7] != 1 || binary.BigEndian.Uint64(n[8:]) > 100000) {
		t.Fatalf("counter did not carry: %x", n)
	}
	if !CheckPoW(powSeed, powBlinded, 200, n) {
		t.Fatal("refused")
	}
}
