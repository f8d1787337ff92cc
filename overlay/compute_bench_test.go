package overlay

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/apps/compute/call"
	"github.com/darkmatter/darkmatter/apps/compute/examples/wordcount/words"
	"github.com/darkmatter/darkmatter/apps/compute/manifest"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/wasmbuild"
)

// The compute benchmarks run every node in this one process over memnet:
// the client, the relays of the circuits and the executors share the
// machine's cores, so what they report is the CPU and scheduling cost of
// a call (onion layers of three hops, the executor's work), not a
// network's latency.

// computeBenchText is the word-count input of the latency and throughput
// benchmarks: 4.4 KB, as the 4KB case of apps/compute/wasm's
// BenchmarkWordCount, so that per-call costs dominate.
var computeBenchText = []byte(strings.Repeat("the quick brown fox jumps over the lazy dog\n", 100))

// benchCtx is a context for one operation of a benchmark (ctxT registers
// a cleanup per call, which a loop should not).
func benchCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), time.Minute)
}

// benchCall calls function of module on in, pinned to executor id when
// id is not nil, and checks the output is want.
func benchCall(b *testing.B, n *Node, module [32]byte, in []byte, want string, o CallOptions) {
	ctx, cancel := benchCtx()
	defer cancel()
	r, err := n.CallWith(ctx, module, "count", in, o)
	if err != nil {
		b.Fatal(err)
	}
	if string(r.Output) != want {
		b.Fatalf("count = %q, want %s", r.Output, want)
	}
}

// echoRoundTrip opens an exit stream to the target over the client's
// 3-hop circuit, sends one byte to its echo and reads it back: a stream
// open (BEGIN, CONNECTED) and one round trip, like a call's stream.
func echoRoundTrip(b *testing.B, h *harness) {
	ctx, cancel := benchCtx()
	defer cancel()
	st, err := h.client.DialStream(ctx, h.target.addr, "")
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if _, err := io.WriteString(st, "E\nx"); err != nil {
		b.Fatal(err)
	}
	if _, err := io.ReadFull(st, make([]byte, 1)); err != nil {
		b.Fatal(err)
	}
}

// runLocal makes the call in-process on executor node ex: Executor.Run,
// no stream, no circuit.
func runLocal(b *testing.B, ex *Node, module [32]byte, in []byte, want string) {
	ctx, cancel := benchCtx()
	defer cancel()
	c := &call.Call{Module: module, Function: "count", Depth: 1, Budget: 1, Timeout: time.Minute, Input: call.Literal(in)}
	res := ex.Executor().Run(ctx, c, nil)
	if res.Status != call.OK || string(res.Output) != want {
		b.Fatalf("local run: %q, %v", res.Output, res.Err())
	}
}

func ms(d time.Duration, n int) float64 { return float64(d) / float64(n) / 1e6 }

// BenchmarkCallCached measures a word-count call on 4.4 KB through a
// 3-hop circuit, the executor holding the module (one call warms it, and
// the circuit to it, which calls reuse): a new BEGIN_COMPUTE stream on
// the circuit, CALL, the run, RESULT. Each iteration also times, in the
// same harness, an exit stream's echo round trip over a 3-hop circuit
// (exit-ms) and the same call run in-process on the executor (run-ms);
// x-exit and x-run are call-ms over each.
func BenchmarkCallCached(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a network")
	}
	h := newComputeNet(b, 4, nil)
	hash, _ := publish(b, h.client, wasmbuild.WordCount, 0, "count")
	ex := h.relays[len(h.relays)-1]
	id := ex.NodeID()
	o := CallOptions{Executor: &id}
	want := strconv.Itoa(words.Count(computeBenchText))
	benchCall(b, h.client, hash, computeBenchText, want, o)
	echoRoundTrip(b, h)
	var callT, exitT, runT time.Duration
	for b.Loop() {
		start := time.Now()
		benchCall(b, h.client, hash, computeBenchText, want, o)
		callT += time.Since(start)
		start = time.Now()
		echoRoundTrip(b, h)
		exitT += time.Since(start)
		start = time.Now()
		runLocal(b, ex, hash, computeBenchText, want)
		runT += time.Since(start)
	}
	if st := ex.Executor().Stats(); st.FromDHT != 1 {
		b.Fatalf("executor %+v: the module was fetched again", st)
	}
	b.ReportMetric(ms(callT, b.N), "call-ms")
	b.ReportMetric(ms(exitT, b.N), "exit-ms")
	b.ReportMetric(ms(runT, b.N), "run-ms")
	b.ReportMetric(float64(callT)/float64(exitT), "x-exit")
	b.ReportMetric(float64(callT)/float64(runT), "x-run")
}

// withCustomSection returns code with a custom section (id 0) named
// "bench" holding i appended: a valid module that runs as code does under
// another hash, so that no executor holds it nor its compilation.
func withCustomSection(code []byte, i int) []byte {
	payload := binary.AppendUvarint([]byte{5, 'b', 'e', 'n', 'c', 'h'}, uint64(i))
	out := append([]byte(nil), code...)
	out = append(out, 0)
	out = binary.AppendUvarint(out, uint64(len(payload)))
	return append(out, payload...)
}

// BenchmarkCallFirst measures a call to an executor that has never seen
// the module: every iteration makes a new variant of the word-count
// module (a custom section appended, so a new hash and nothing cached,
// not even its compilation) and calls it on 4.4 KB through a 3-hop
// circuit to one pinned executor.
//
//   - dht: the variant was published (not timed); the executor looks up
//     its manifest, verifies it, fetches the 1.9 MB blob in 16 kB chunks
//     from the DHT over its own circuits, compiles and runs it.
//   - offer: nothing published; the call carries the manifest and offers
//     the bytes; the executor's DHT lookup finds no blob, it sends NEED,
//     and the requester sends the module over the circuit.
//
// Compilation alone is about half a second on the 2-core machine
// (apps/compute/executor BenchmarkRun/fetch-compile less
// fetch-instantiate); cached-ms is the warm call in the same harness and
// x-cached the ratio. Run with a small -benchtime (e.g. 5x): every
// iteration compiles a module.
func BenchmarkCallFirst(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a network")
	}
	h := newComputeNet(b, 4, nil)
	code, _ := wasmbuild.Module(b, wasmbuild.WordCount)
	ex := h.relays[len(h.relays)-1]
	id := ex.NodeID()
	want := strconv.Itoa(words.Count(computeBenchText))
	author, err := keys.GenerateIdentity(nil)
	if err != nil {
		b.Fatal(err)
	}
	variant := 0
	newVariant := func() ([]byte, *manifest.Manifest) {
		variant++
		v := withCustomSection(code, variant)
		return v, &manifest.Manifest{Functions: []string{"count"}, Created: time.Now().Unix(),
			Limits: manifest.Limits{MemoryPages: 256, TimeoutMS: 60000, MaxOutput: 1 << 20}}
	}
	// The warm call, measured once per sub-benchmark in the same harness.
	warm, _ := publish(b, h.client, wasmbuild.WordCount, 0, "count")
	cached := func(b *testing.B) time.Duration {
		const n = 20
		benchCall(b, h.client, warm, computeBenchText, want, CallOptions{Executor: &id})
		start := time.Now()
		for range n {
			benchCall(b, h.client, warm, computeBenchText, want, CallOptions{Executor: &id})
		}
		return time.Since(start) / n
	}
	report := func(b *testing.B, first, warm time.Duration) {
		b.ReportMetric(ms(first, b.N), "first-ms")
		b.ReportMetric(ms(warm, 1), "cached-ms")
		b.ReportMetric(float64(first)/float64(b.N)/float64(warm), "x-cached")
	}
	b.Run("dht", func(b *testing.B) {
		var first time.Duration
		before := ex.Executor().Stats().FromDHT
		for b.Loop() {
			v, m := newVariant()
			ctx, cancel := benchCtx()
			if _, err := h.client.PublishModule(ctx, v, m, author); err != nil {
				b.Fatal(err)
			}
			cancel()
			start := time.Now()
			benchCall(b, h.client, m.ModuleHash, computeBenchText, want, CallOptions{Executor: &id})
			first += time.Since(start)
		}
		if got := ex.Executor().Stats().FromDHT - before; got != uint64(b.N) {
			b.Fatalf("%d modules from the DHT in %d calls", got, b.N)
		}
		report(b, first, cached(b))
	})
	b.Run("offer", func(b *testing.B) {
		var first time.Duration
		before := ex.Executor().Stats().FromAsker
		for b.Loop() {
			v, m := newVariant()
			m.ModuleHash, m.ModuleSize = manifest.ModuleHash(v), uint32(len(v))
			raw, err := m.Sign(h.client.cfg.Network, author)
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			benchCall(b, h.client, m.ModuleHash, computeBenchText, want, CallOptions{Executor: &id, Code: v, Manifest: raw})
			first += time.Since(start)
		}
		if got := ex.Executor().Stats().FromAsker - before; got != uint64(b.N) {
			b.Fatalf("%d modules from the requester in %d calls", got, b.N)
		}
		report(b, first, cached(b))
	})
}

// BenchmarkCallThroughput measures the word-count calls per second one
// executor sustains, with 1, 2 and 8 callers (8 is its default Capacity;
// more would be refused Busy) on one client node, each call on 4.4 KB
// over a 3-hop circuit to the pinned executor. The same callers then make
// as many calls in-process on the executor (Executor.Run), in the same
// harness: run-calls/s is the executor's own ceiling on this machine,
// whose 2 cores it shares with the circuits' relays and the client, and
// of-run the circuit rate over it.
func BenchmarkCallThroughput(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a network")
	}
	h := newComputeNet(b, 4, nil)
	hash, _ := publish(b, h.client, wasmbuild.WordCount, 0, "count")
	ex := h.relays[len(h.relays)-1]
	id := ex.NodeID()
	o := CallOptions{Executor: &id}
	want := strconv.Itoa(words.Count(computeBenchText))
	benchCall(b, h.client, hash, computeBenchText, want, o)
	for _, callers := range []int{1, 2, 8} {
		b.Run(strconv.Itoa(callers), func(b *testing.B) {
			// rate makes b.N calls of f from callers goroutines and
			// returns the calls per second.
			rate := func(f func()) float64 {
				var next atomic.Int64
				var wg sync.WaitGroup
				start := time.Now()
				for range callers {
					wg.Go(func() {
						for next.Add(1) <= int64(b.N) {
							f()
						}
					})
				}
				wg.Wait()
				return float64(b.N) / time.Since(start).Seconds()
			}
			before := ex.Executor().Stats()
			b.ResetTimer()
			viaCircuit := rate(func() { benchCall(b, h.client, hash, computeBenchText, want, o) })
			local := rate(func() { runLocal(b, ex, hash, computeBenchText, want) })
			b.StopTimer()
			if st := ex.Executor().Stats(); st.Busy != before.Busy {
				b.Fatalf("executor %+v: calls refused Busy", st)
			}
			b.ReportMetric(viaCircuit, "calls/s")
			b.ReportMetric(local, "run-calls/s")
			b.ReportMetric(viaCircuit/local, "of-run")
		})
	}
}

// fanOutSizes are the fan-out inputs: 256 KiB of text, whose word count
// (about 22 ms in wazero) outweighs one call's fixed cost (about 5 ms,
// mostly the Go runtime's start in the module), and 1 MiB less room for
// the module hash (the largest literal input, about 90 ms of counting).
var fanOutSizes = []struct {
	name string
	size int
}{
	{"256KiB", 256 << 10},
	{"1MiB", call.MaxInput - 1024},
}

// fanOutK1 are the k=1 times of BenchmarkFanOut by input, for the
// others' speedup.
var fanOutK1 = map[string]float64{}

// BenchmarkFanOut measures the fan-out module counting text through k =
// 1, 2 and 4 word-count executors: a network of 6 relays where relay 0 is
// the executor the client calls (it runs the fan-out module, which splits
// the text in 4 parts and sub-calls the word count on each over 3-hop
// circuits of its own) and relays 1..k are the executors the sub-calls
// can reach (an executor never delegates to itself); the other relays are
// plain. single-ms is one word-count call on the whole text on relay 1,
// measured in the same harness; x-single is single-ms over the fan-out's
// time, and x-k1 the k=1 fan-out's time over this k's.
//
// All nodes share this process's 2 cores, and an executor runs its
// sub-calls in parallel (up to its Capacity), so k=1 already keeps both
// cores busy with its 4 parts: on this machine the fan-out can gain at
// most 2× over the single call, less the fixed costs it adds (five
// module starts instead of one, the text shipped over two 3-hop
// circuits instead of one), and what k changes is how many circuits
// carry the parts, not the cores that count them. On separate machines
// each executor brings its own cores: with c cores each, the 4 parts run
// min(4, k·c) at a time, so the counting falls to 1/min(4, k·c) of the
// single call's (up to 4× with 4 single-core executors or one of 4
// cores; more with more parts), while the split, the shipping and the
// module starts stay.
func BenchmarkFanOut(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a network")
	}
	for _, k := range []int{1, 2, 4} {
		b.Run("k="+strconv.Itoa(k), func(b *testing.B) {
			relay := 0
			h := newComputeNet(b, 6, func(c *Config) {
				if len(c.Listen) == 0 {
					return
				}
				if relay > k {
					c.Executor = nil
				}
				relay++
			})
			wc, _ := publish(b, h.client, wasmbuild.WordCount, 0, "count")
			fo, _ := publish(b, h.client, wasmbuild.FanOut, manifest.PermSubCalls, "count")
			coord, worker := h.relays[0].NodeID(), h.relays[1].NodeID()
			for _, sz := range fanOutSizes {
				b.Run(sz.name, func(b *testing.B) {
					text := bytes.Repeat([]byte("one two three four five six seven eight nine ten\n"), sz.size/50)
					in := []byte(hex.EncodeToString(wc[:]) + "\n" + string(text))
					want := strconv.Itoa(words.Count(text))
					fanOut := func() { benchCall(b, h.client, fo, in, want, CallOptions{Executor: &coord}) }
					single := func() { benchCall(b, h.client, wc, text, want, CallOptions{Executor: &worker}) }
					fanOut() // fetches the modules, builds the circuits
					single()
					var fanT, singleT time.Duration
					for b.Loop() {
						start := time.Now()
						fanOut()
						fanT += time.Since(start)
						start = time.Now()
						single()
						singleT += time.Since(start)
					}
					perCall := ms(fanT, b.N)
					if k == 1 {
						fanOutK1[sz.name] = perCall
					}
					b.ReportMetric(perCall, "fanout-ms")
					b.ReportMetric(ms(singleT, b.N), "single-ms")
					b.ReportMetric(float64(singleT)/float64(fanT), "x-single")
					if k1 := fanOutK1[sz.name]; k1 > 0 {
						b.ReportMetric(k1/perCall, "x-k1")
					}
				})
			}
			ran := 0
			for _, r := range h.relays[1:] {
				if e := r.Executor(); e != nil && e.Stats().OK > 0 {
					ran++
				}
			}
			if ran != k {
				b.Fatalf("sub-calls ran on %d executors, want %d", ran, k)
			}
		})
	}
}
