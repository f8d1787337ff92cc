package hs

import (
	"context"
	"testing"
)

func BenchmarkClientIntroduce(b *testing.B) {
	f := newFixture(b, 60)
	tg := f.target()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ClientIntroduce(nil, tg, testIntro()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkServiceAccept(b *testing.B) {
	f := newFixture(b, 61)
	_, enc, err := ClientIntroduce(nil, f.target(), testIntro())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, _, err := f.accept(nil, enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSealDescriptor(b *testing.B) {
	f := newFixture(b, 62)
	d := f.descriptor(3)
	_, pub := clientKeysFor(b, 63, 32)
	for _, c := range []struct {
		name    string
		clients int
	}{{"public", 0}, {"32clients", 32}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := SealDescriptor(nil, d, f.network, f.id.Public(), f.p, pub[:c.clients]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkOpenDescriptor(b *testing.B) {
	f := newFixture(b, 64)
	d := f.descriptor(3)
	priv, pub := clientKeysFor(b, 65, 32)
	for _, c := range []struct {
		name    string
		clients int
	}{{"public", 0}, {"32clients", 32}} {
		v := f.seal(b, d, pub[:c.clients])
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.open(v, priv[31]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkLayerSeal(b *testing.B) {
	f := newFixture(b, 66)
	cl, _ := handshake(b, f)
	pt := make([]byte, 4096)
	buf := make([]byte, 0, len(pt)+LayerOverhead)
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		buf = cl.Seal(buf[:0], pt)
	}
}

func BenchmarkSolvePoW(b *testing.B) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SolvePoW(ctx, powSeed, powBlinded, 1000); err != nil {
			b.Fatal(err)
		}
	}
}
