package words

import "testing"

func TestCount(t *testing.T) {
	for in, want := range map[string]int{"": 0, " ": 0, "a": 1, " a b ": 2, "a\tb\nc\vd\fe\rf": 6, "héllo wörld": 2, "a\u00a0b": 1} {
		if got := Count([]byte(in)); got != want {
			t.Fatalf("Count(%q) = %d, want %d", in, got, want)
		}
	}
}
