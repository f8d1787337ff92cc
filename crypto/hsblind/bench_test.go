package hsblind

import "testing"

func BenchmarkBlindPublic(b *testing.B) {
	pub := testKey(0).Public()
	p := testPeriods[1]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := BlindPublic(pub, "darkmatter", p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBlindPrivate(b *testing.B) {
	k := testKey(0)
	p := testPeriods[1]
	b.ReportAllocs()
	for b.Loop() {
		BlindPrivate(k, "darkmatter", p)
	}
}

func BenchmarkSign(b *testing.B) {
	bk := BlindPrivate(testKey(0), "darkmatter", testPeriods[1])
	msg := make([]byte, 1024)
	b.ReportAllocs()
	for b.Loop() {
		bk.Sign(msg)
	}
}

func BenchmarkVerify(b *testing.B) {
	bk := BlindPrivate(testKey(0), "darkmatter", testPeriods[1])
	msg := make([]byte, 1024)
	sig := bk.Sign(msg)
	pub := bk.Public()
	b.ReportAllocs()
	for b.Loop() {
		if !pub.Verify(msg, sig) {
			b.Fatal("verify failed")
		}
	}
}
