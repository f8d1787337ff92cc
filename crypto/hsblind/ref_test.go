package hsblind

// An independent, test-only reference for the blinding arithmetic: affine
// edwards25519 over math/big, ported from the Python reference code in RFC
// 8032 §6 (extended coordinates, the same add formula, double-and-add
// multiplication). It shares no code with filippo.io/edwards25519 or
// crypto/ed25519, and it is slow and variable-time: tests only.
//
// The blinding factor is recomputed here from the spec text
// (spec/hidden-services.md §2), not by calling blindingFactor.

import (
	"crypto/sha3"
	"crypto/sha512"
	"math/big"
	"slices"
)

var (
	refP = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	refL = func() *big.Int {
		c, _ := new(big.Int).SetString("27742317777372353535851937790883648493", 10)
		return c.Add(c, new(big.Int).Lsh(big.NewInt(1), 252))
	}()
	refD = func() *big.Int { // -121665 / 121666 mod p
		d := refInv(big.NewInt(121666))
		d.Mul(d, big.NewInt(-121665))
		return d.Mod(d, refP)
	}()
	refSqrtM1 = new(big.Int).Exp(big.NewInt(2), new(big.Int).Rsh(new(big.Int).Sub(refP, big.NewInt(1)), 2), refP)
	refBase   = func() refPoint {
		y := new(big.Int).Mul(big.NewInt(4), refInv(big.NewInt(5)))
		y.Mod(y, refP)
		x, _ := refRecoverX(y, 0)
		return refPoint{x, y, big.NewInt(1), new(big.Int).Mod(new(big.Int).Mul(x, y), refP)}
	}()
)

// refPoint is (X, Y, Z, T) with x = X/Z, y = Y/Z, x·y = T/Z.
type refPoint struct{ X, Y, Z, T *big.Int }

func refMod(x *big.Int) *big.Int { return x.Mod(x, refP) }

func refInv(x *big.Int) *big.Int {
	return new(big.Int).Exp(x, new(big.Int).Sub(refP, big.NewInt(2)), refP)
}

func refMul(a, b *big.Int) *big.Int { return refMod(new(big.Int).Mul(a, b)) }

func refAdd(p, q refPoint) refPoint {
	a := refMul(new(big.Int).Sub(p.Y, p.X), new(big.Int).Sub(q.Y, q.X))
	b := refMul(new(big.Int).Add(p.Y, p.X), new(big.Int).Add(q.Y, q.X))
	c := refMul(refMul(refMul(p.T, big.NewInt(2)), refD), q.T)
	d := refMul(refMul(p.Z, big.NewInt(2)), q.Z)
	e := refMod(new(big.Int).Sub(b, a))
	f := refMod(new(big.Int).Sub(d, c))
	g := refMod(new(big.Int).Add(d, c))
	h := refMod(new(big.Int).Add(b, a))
	return refPoint{refMul(e, f), refMul(g, h), refMul(f, g), refMul(e, h)}
}

// refScalarMult is s·p for any non-negative integer s (not reduced mod ℓ).
func refScalarMult(s *big.Int, p refPoint) refPoint {
	q := refPoint{big.NewInt(0), big.NewInt(1), big.NewInt(1), big.NewInt(0)}
	for i := s.BitLen() - 1; i >= 0; i-- {
		q = refAdd(q, q)
		if s.Bit(i) == 1 {
			q = refAdd(q, p)
		}
	}
	return q
}

func refRecoverX(y *big.Int, sign uint) (*big.Int, bool) {
	if y.Cmp(refP) >= 0 {
		return nil, false
	}
	yy := refMul(y, y)
	x2 := refMul(new(big.Int).Sub(yy, big.NewInt(1)), refInv(refMod(new(big.Int).Add(refMul(refD, yy), big.NewInt(1)))))
	if x2.Sign() == 0 {
		if sign == 1 {
			return nil, false
		}
		return x2, true
	}
	x := new(big.Int).Exp(x2, new(big.Int).Rsh(new(big.Int).Add(refP, big.NewInt(3)), 3), refP)
	if refMod(new(big.Int).Sub(refMul(x, x), x2)).Sign() != 0 {
		x = refMul(x, refSqrtM1)
	}
	if refMod(new(big.Int).Sub(refMul(x, x), x2)).Sign() != 0 {
		return nil, false
	}
	if x.Bit(0) != sign {
		x.Sub(refP, x)
	}
	return x, true
}

// refLE decodes a little-endian integer.
func refLE(b []byte) *big.Int {
	be := slices.Clone(b)
	slices.Reverse(be)
	return new(big.Int).SetBytes(be)
}

func refDecompress(b [32]byte) (refPoint, bool) {
	y := refLE(b[:])
	sign := y.Bit(255)
	y.SetBit(y, 255, 0)
	x, ok := refRecoverX(y, sign)
	if !ok {
		return refPoint{}, false
	}
	return refPoint{x, y, big.NewInt(1), refMul(x, y)}, true
}

func refCompress(p refPoint) [32]byte {
	zi := refInv(p.Z)
	x, y := refMul(p.X, zi), refMul(p.Y, zi)
	y.SetBit(y, 255, x.Bit(0))
	var out [32]byte
	y.FillBytes(out[:])
	slices.Reverse(out[:])
	return out
}

func refEqual(p, q refPoint) bool {
	// X1·Z2 == X2·Z1 and Y1·Z2 == Y2·Z1
	return refMul(p.X, q.Z).Cmp(refMul(q.X, p.Z)) == 0 && refMul(p.Y, q.Z).Cmp(refMul(q.Y, p.Z)) == 0
}

// refBlindingFactor is h from spec/hidden-services.md §2, as an integer.
func refBlindingFactor(pub [32]byte, network string, number, lengthMin uint64) *big.Int {
	in := []byte("darkmatter blind v1\x00")
	in = append(in, network...)
	in = append(in, pub[:]...)
	b := refCompress(refBase)
	in = append(in, b[:]...)
	in = append(in, "key-blind"...)
	for _, v := range []uint64{number, lengthMin} {
		for i := 7; i >= 0; i-- {
			in = append(in, byte(v>>(8*i)))
		}
	}
	h := sha3.Sum256(in)
	h[0] &= 248
	h[31] &= 63
	h[31] |= 64
	return refLE(h[:])
}

// refBlindPublic is h·A with the full integer h, or ok == false when pub
// does not decode.
func refBlindPublic(pub [32]byte, network string, number, lengthMin uint64) (out [32]byte, ok bool) {
	A, ok := refDecompress(pub)
	if !ok {
		return out, false
	}
	return refCompress(refScalarMult(refBlindingFactor(pub, network, number, lengthMin), A)), true
}

// refBlindSecretPublic is (h·a mod ℓ)·B for the RFC 8032 secret scalar a of
// seed.
func refBlindSecretPublic(seed [32]byte, pub [32]byte, network string, number, lengthMin uint64) [32]byte {
	exp := sha512.Sum512(seed[:])
	exp[0] &= 248
	exp[31] &= 127
	exp[31] |= 64
	a := refLE(exp[:32])
	s := new(big.Int).Mul(refBlindingFactor(pub, network, number, lengthMin), a)
	s.Mod(s, refL)
	return refCompress(refScalarMult(s, refBase))
}

// refVerify checks the Ed25519 equation S·B == R + SHA-512(R‖A‖M)·A with
// the reference arithmetic (S < ℓ required, cofactorless, as RFC 8032's code).
func refVerify(pub [32]byte, msg, sig []byte) bool {
	if len(sig) != 64 {
		return false
	}
	A, ok := refDecompress(pub)
	if !ok {
		return false
	}
	R, ok := refDecompress([32]byte(sig[:32]))
	if !ok {
		return false
	}
	S := refLE(sig[32:])
	if S.Cmp(refL) >= 0 {
		return false
	}
	d := sha512.New()
	d.Write(sig[:32])
	d.Write(pub[:])
	d.Write(msg)
	k := new(big.Int).Mod(refLE(d.Sum(nil)), refL)
	return refEqual(refScalarMult(S, refBase), refAdd(R, refScalarMult(k, A)))
}

func sha512Sum(b []byte) [64]byte { return sha512.Sum512(b) }
