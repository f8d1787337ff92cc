package names

import (
	"context"
	"testing"
	"time"
)

func BenchmarkParse(b *testing.B) {
	r := &Record{Name: "blog.alice", Registered: epoch, Expires: epoch.Add(time.Hour), Nonce: 7,
		Entries: []Entry{AddressEntry(service(1)), TextEntry("hello")}}
	enc, err := r.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(enc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSolve16 measures registration work at difficulty 16; the
// default (20) costs 16 times as much.
func BenchmarkSolve16(b *testing.B) {
	o := owner(1).Public()
	reg := epoch
	for b.Loop() {
		reg = reg.Add(time.Second) // a fresh puzzle each time
		if _, err := Solve(context.Background(), "alice", o, reg, 16); err != nil {
			b.Fatal(err)
		}
	}
}
