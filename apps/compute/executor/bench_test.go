package executor

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/apps/compute/call"
	"github.com/darkmatter/darkmatter/apps/compute/examples/wordcount/words"
	"github.com/darkmatter/darkmatter/apps/compute/manifest"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/wasmbuild"
	"github.com/tetratelabs/wazero"
)

// benchNetwork is the network name the benchmarks' manifests are signed for.
const benchNetwork = "bench"

// benchText is the word-count input of the executor benchmarks: small, so
// that the per-call costs (module fetch, compilation, instantiation)
// dominate what is measured.
var benchText = []byte(strings.Repeat("the quick brown fox jumps over the lazy dog\n", 100))

// benchModule is the word-count module with a signed manifest, served
// from memory: the Manifests and Blob functions of an executor that
// fetches it without a network.
type benchModule struct {
	code []byte
	hash [32]byte
	raw  []byte // signed manifest
}

func newBenchModule(b *testing.B) *benchModule {
	b.Helper()
	code, hash := wasmbuild.Module(b, wasmbuild.WordCount)
	b.Cleanup(wasmbuild.Cleanup) // this package has no TestMain to remove the build directory
	author, err := keys.GenerateIdentity(nil)
	if err != nil {
		b.Fatal(err)
	}
	m := &manifest.Manifest{ModuleHash: hash, ModuleSize: uint32(len(code)), Functions: []string{"count"},
		Created: time.Now().Unix(), Limits: manifest.Limits{MemoryPages: 256, TimeoutMS: 60000, MaxOutput: 1 << 20}}
	raw, err := m.Sign(benchNetwork, author)
	if err != nil {
		b.Fatal(err)
	}
	return &benchModule{code: code, hash: hash, raw: raw}
}

func (bm *benchModule) config(cache wazero.CompilationCache) Config {
	return Config{
		Network:      benchNetwork,
		Policy:       Policy{Timeout: time.Minute},
		CompileCache: cache,
		Manifests: func(_ context.Context, module [32]byte) ([][]byte, error) {
			if module != bm.hash {
				return nil, nil
			}
			return [][]byte{bm.raw}, nil
		},
		Blob: func(_ context.Context, hash [32]byte) ([]byte, error) {
			if hash != bm.hash {
				return nil, errors.New("no such blob")
			}
			return bm.code, nil
		},
	}
}

func (bm *benchModule) call() *call.Call {
	return &call.Call{Module: bm.hash, Function: "count", Depth: 1, Budget: 1, Timeout: time.Minute, Input: call.Literal(benchText)}
}

// run makes the benchmark's call on e and checks its answer.
func (bm *benchModule) run(b *testing.B, e *Executor) {
	res := e.Run(context.Background(), bm.call(), nil)
	if res.Status != call.OK {
		b.Fatalf("call: %v", res.Err())
	}
	if want := strconv.Itoa(words.Count(benchText)); string(res.Output) != want {
		b.Fatalf("count = %q, want %s", res.Output, want)
	}
}

// BenchmarkRun measures one word-count call made in-process on an
// executor (Executor.Run: no stream, no network), the module
// served from memory:
//
//   - cached: the executor holds the verified manifest, the bytes and the
//     compiled module (warmed by one call); a call is the hash check,
//     instantiation with the Go runtime's start, and the count.
//   - fetch-instantiate: a new executor each call whose runtime shares a
//     compilation cache that already holds the module: the manifest is
//     looked up and its signature verified, the bytes fetched and hashed,
//     the compiled module taken from the cache, then as cached.
//   - fetch-compile: a new executor each call with no compilation cache:
//     as fetch-instantiate, but the module is compiled.
//   - new-executor: creating and closing an executor alone, which the two
//     above include (subtract it for the module's cold-start cost).
//
// The x-cached metrics are each variant's time over cached's, measured in
// the same run. Creating and closing the executors of the cold variants
// is timed (Close is cheap; the new-executor row shows both).
func BenchmarkRun(b *testing.B) {
	bm := newBenchModule(b)
	var cachedNs float64
	perOp := func(b *testing.B) float64 { return float64(b.Elapsed().Nanoseconds()) / float64(b.N) }
	ratio := func(b *testing.B) {
		if cachedNs > 0 {
			b.ReportMetric(perOp(b)/cachedNs, "x-cached")
		}
	}
	b.Run("cached", func(b *testing.B) {
		e, err := New(context.Background(), bm.config(nil))
		if err != nil {
			b.Fatal(err)
		}
		defer e.Close(context.Background())
		bm.run(b, e) // fetch and compile once
		b.ReportAllocs()
		for b.Loop() {
			bm.run(b, e)
		}
		if st := e.Stats(); st.FromDHT != 1 {
			b.Fatalf("stats %+v: the module was fetched again", st)
		}
		cachedNs = perOp(b)
	})
	cold := func(cache wazero.CompilationCache) func(b *testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				e, err := New(context.Background(), bm.config(cache))
				if err != nil {
					b.Fatal(err)
				}
				bm.run(b, e)
				if st := e.Stats(); st.FromDHT != 1 {
					b.Fatalf("stats %+v: want the module fetched once", st)
				}
				e.Close(context.Background())
			}
			ratio(b)
		}
	}
	shared := wazero.NewCompilationCache()
	defer shared.Close(context.Background())
	warm, err := New(context.Background(), bm.config(shared))
	if err != nil {
		b.Fatal(err)
	}
	bm.run(b, warm) // compiles the module into the shared cache
	warm.Close(context.Background())
	b.Run("fetch-instantiate", cold(shared))
	b.Run("fetch-compile", cold(nil))
	b.Run("new-executor", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			e, err := New(context.Background(), bm.config(nil))
			if err != nil {
				b.Fatal(err)
			}
			e.Close(context.Background())
		}
		ratio(b)
	})
}
