package wasm

import (
	"context"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/darkmatter/darkmatter/apps/compute/examples/wordcount/words"
)

func runtimeGosched() { runtime.Gosched() }

// Benchmark inputs: a small text (per-call cost dominates) and 1 MiB-ish
// (the function's own speed dominates).
var benchTexts = []struct {
	name string
	text []byte
}{
	{"4KB", []byte(strings.Repeat("the quick brown fox jumps over the lazy dog\n", 100))},
	{"1MB", []byte(strings.Repeat("the quick brown fox jumps over the lazy dog\n", 23000))},
}

// BenchmarkWordCount is one call of the wasm word count, module cached: hash
// check, instantiation, _initialize (Go's runtime start), the call.
func BenchmarkWordCount(b *testing.B) {
	code, hash := module(b, wordcountPkg)
	r := newRuntime(b, Limits{})
	for _, in := range benchTexts {
		b.Run(in.name, func(b *testing.B) {
			if _, err := r.Run(context.Background(), hash, code, "count", in.text, nil); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(in.text)))
			for b.Loop() {
				if _, err := r.Run(context.Background(), hash, code, "count", in.text, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWordCountNative is the same function run natively.
func BenchmarkWordCountNative(b *testing.B) {
	for _, in := range benchTexts {
		b.Run(in.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in.text)))
			for b.Loop() {
				_ = strconv.AppendInt(nil, int64(words.Count(in.text)), 10)
			}
		})
	}
}
