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

var benchText = []byte(strings.Repeat("the quick brown fox jumps over the lazy dog\n", 100)) // 4.4 KB

// BenchmarkWordCount is one call of the wasm word count, module cached: hash
// check, instantiation, _initialize, the call.
func BenchmarkWordCount(b *testing.B) {
	code, hash := module(b, wordcountPkg)
	r := newRuntime(b, Limits{})
	if _, err := r.Run(context.Background(), hash, code, "count", benchText, nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(benchText)))
	for b.Loop() {
		if _, err := r.Run(context.Background(), hash, code, "count", benchText, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWordCountNative is the same function run natively.
func BenchmarkWordCountNative(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchText)))
	for b.Loop() {
		_ = strconv.AppendInt(nil, int64(words.Count(benchText)), 10)
	}
}
