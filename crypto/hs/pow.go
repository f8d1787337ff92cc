package hs

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"math"

	"golang.org/x/crypto/blake2b"

	"github.com/darkmatter/darkmatter/crypto/hsblind"
)

// powPrefix starts the proof-of-work hash input (spec/hidden-services.md §6).
const powPrefix = "darkmatter pow v1\x00"

// powInputLen is the hash input: prefix ‖ seed (32) ‖ blinded (32) ‖
// effort (4) ‖ nonce (16).
const powInputLen = len(powPrefix) + 32 + 32 + 4 + 16

// powCheckEvery is how many nonces SolvePoW tries between looks at ctx.
const powCheckEvery = 1024

// powInput returns the hash input with a zero nonce, and the offset of
// the nonce in it.
func powInput(seed [32]byte, blinded hsblind.BlindedPublicKey, effort uint32) ([powInputLen]byte, int) {
	var in [powInputLen]byte
	b := append(in[:0], powPrefix...)
	b = append(b, seed[:]...)
	b = append(b, blinded[:]...)
	b = binary.BigEndian.AppendUint32(b, effort)
	return in, len(b)
}

// powValid reports whether the hash h meets effort: uint32(h[0:4])
// (big-endian) × effort ≤ 2^32 − 1. Expected tries: effort.
func powValid(h *[32]byte, effort uint32) bool {
	return uint64(binary.BigEndian.Uint32(h[:4]))*uint64(effort) <= math.MaxUint32
}

// CheckPoW reports whether nonce is a valid proof of work of the given
// effort for seed and blinded key: effort 0 is always valid; otherwise
// h = BLAKE2b-256("darkmatter pow v1\x00" ‖ seed ‖ blinded ‖ effort ‖
// nonce) must meet the effort.
func CheckPoW(seed [32]byte, blinded hsblind.BlindedPublicKey, effort uint32, nonce [16]byte) bool {
	if effort == 0 {
		return true
	}
	in, off := powInput(seed, blinded, effort)
	copy(in[off:], nonce[:])
	h := blake2b.Sum256(in[:])
	return powValid(&h, effort)
}

// SolvePoW finds a nonce that CheckPoW accepts, counting up from a random
// one. It tries effort nonces on average (a few milliseconds per thousand)
// and returns ctx's error if ctx ends first. Effort 0 returns a zero nonce.
func SolvePoW(ctx context.Context, seed [32]byte, blinded hsblind.BlindedPublicKey, effort uint32) ([16]byte, error) {
	var start [16]byte
	if effort == 0 {
		return start, nil
	}
	if _, err := rand.Read(start[:]); err != nil {
		return start, err
	}
	return solvePoW(ctx, seed, blinded, effort, start)
}

// solvePoW tries start, start+1, ... (the nonce read as a 128-bit
// big-endian integer, wrapping) and returns the first valid nonce.
func solvePoW(ctx context.Context, seed [32]byte, blinded hsblind.BlindedPublicKey, effort uint32, start [16]byte) ([16]byte, error) {
	in, off := powInput(seed, blinded, effort)
	nonce := in[off:]
	copy(nonce, start[:])
	for i := 0; ; i++ {
		if i%powCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return [16]byte{}, err
			}
		}
		h := blake2b.Sum256(in[:])
		if effort == 0 || powValid(&h, effort) {
			return [16]byte(nonce), nil
		}
		hi := binary.BigEndian.Uint64(nonce[:8])
		lo := binary.BigEndian.Uint64(nonce[8:]) + 1
		if lo == 0 {
			hi++
		}
		binary.BigEndian.PutUint64(nonce[:8], hi)
		binary.BigEndian.PutUint64(nonce[8:], lo)
	}
}
