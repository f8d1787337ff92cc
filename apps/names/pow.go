package names

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math/bits"
	"time"

	"golang.org/x/crypto/blake2b"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// Proof-of-work constants (spec/names.md §3).
const (
	// PoWContext starts the proof-of-work hash input.
	PoWContext = "darkmatter name pow\x00"
	// DefaultDifficulty is the network's difficulty unless configured:
	// 2^22 hashes on average, about half a second on one core of a 2020s
	// x86 server (BenchmarkSolve16 × 64).
	DefaultDifficulty = 22
	// MaxDifficulty is the highest difficulty Solve and Spec accept.
	MaxDifficulty = 40
)

// powCheckEvery is how many nonces Solve tries between looks at ctx.
const powCheckEvery = 4096

// powInput returns the hash input with a zero nonce; the nonce is its
// last 8 bytes.
func powInput(name string, owner keys.IdentityPublicKey, registered int64) []byte {
	b := make([]byte, 0, len(PoWContext)+1+len(name)+keys.PublicKeySize+16)
	b = append(b, PoWContext...)
	b = append(b, byte(len(name)))
	b = append(b, name...)
	b = append(b, owner[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(registered))
	return binary.BigEndian.AppendUint64(b, 0)
}

// zeroBits returns the number of leading zero bits of h (up to 64).
func zeroBits(h *[32]byte) int { return bits.LeadingZeros64(binary.BigEndian.Uint64(h[:8])) }

// CheckPoW reports whether nonce is a proof of work of at least
// difficulty bits for name, owner and registered: the hash
// BLAKE2b-256(PoWContext ‖ len(name) (1) ‖ name ‖ owner ‖ registered (8) ‖
// nonce (8)) starts with at least difficulty zero bits. Difficulty 0 is
// always met.
func CheckPoW(name string, owner keys.IdentityPublicKey, registered time.Time, nonce uint64, difficulty int) bool {
	if difficulty <= 0 {
		return true
	}
	in := powInput(name, owner, registered.Unix())
	binary.BigEndian.PutUint64(in[len(in)-8:], nonce)
	h := blake2b.Sum256(in)
	return zeroBits(&h) >= difficulty
}

// Solve finds a nonce that CheckPoW accepts, counting up from a random
// one; it tries 2^difficulty nonces on average and returns ctx's error if
// ctx ends first. It refuses a difficulty outside 0..MaxDifficulty and a
// name that is not canonical.
func Solve(ctx context.Context, name string, owner keys.IdentityPublicKey, registered time.Time, difficulty int) (uint64, error) {
	if difficulty < 0 || difficulty > MaxDifficulty {
		return 0, fmt.Errorf("names: difficulty %d out of 0..%d", difficulty, MaxDifficulty)
	}
	if c, err := CanonicalName(name); err != nil || c != name {
		return 0, fmt.Errorf("%w: not in canonical form", ErrName)
	}
	var start [8]byte
	if _, err := rand.Read(start[:]); err != nil {
		return 0, err
	}
	return solve(ctx, name, owner, registered.Unix(), difficulty, binary.BigEndian.Uint64(start[:]))
}

// solve tries start, start+1, ... (wrapping).
func solve(ctx context.Context, name string, owner keys.IdentityPublicKey, registered int64, difficulty int, start uint64) (uint64, error) {
	in := powInput(name, owner, registered)
	tail := in[len(in)-8:]
	for i, nonce := 0, start; ; i, nonce = i+1, nonce+1 {
		if i%powCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
		}
		binary.BigEndian.PutUint64(tail, nonce)
		h := blake2b.Sum256(in)
		if zeroBits(&h) >= difficulty {
			return nonce, nil
		}
	}
}
