package ratelimit

import (
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	var b Bucket
	t0 := time.Unix(1000, 0)
	for i := range 3 {
		if !b.Take(t0, 2, 3) {
			t.Fatalf("take %d of a full bucket of 3 refused", i)
		}
	}
	if b.Take(t0, 2, 3) {
		t.Fatal("a fourth take at once allowed")
	}
	if !b.Take(t0.Add(500*time.Millisecond), 2, 3) || b.Take(t0.Add(500*time.Millisecond), 2, 3) {
		t.Fatal("half a second at 2/s must give exactly one token")
	}
	if got := 0; true {
		for b.Take(t0.Add(time.Hour), 2, 3) {
			got++
		}
		if got != 3 {
			t.Fatalf("an hour refills to %d tokens, want the burst of 3", got)
		}
	}
}
