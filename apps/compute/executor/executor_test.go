package executor

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/apps/compute/call"
	"github.com/darkmatter/darkmatter/apps/compute/manifest"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/wasmbuild"
)

const testNetwork = "test-compute"

// world is a DHT in memory and a set of executors that delegate
// sub-calls to each other in turn, each over a pipe, as over a stream.
type world struct {
	t         *testing.T
	author    *keys.IdentityPrivateKey
	mu        sync.Mutex
	manifests map[[32]byte][][]byte
	blobs     map[[32]byte][]byte
	execs     []*Executor
	next      atomic.Uint64
	runs      atomic.Int64 // calls served, over all executors
}

func newWorld(t *testing.T, n int, p Policy) *world {
	w := &world{t: t, manifests: map[[32]byte][][]byte{}, blobs: map[[32]byte][]byte{}}
	var err error
	if w.author, err = keys.GenerateIdentity(nil); err != nil {
		t.Fatal(err)
	}
	for range n {
		ex, err := New(context.Background(), Config{
			Network: testNetwork, Policy: p, CompileCache: testCache,
			Manifests: func(_ context.Context, h [32]byte) ([][]byte, error) {
				w.mu.Lock()
				defer w.mu.Unlock()
				return w.manifests[h], nil
			},
			Blob: func(_ context.Context, h [32]byte) ([]byte, error) {
				w.mu.Lock()
				defer w.mu.Unlock()
				b, ok := w.blobs[h]
				if !ok {
					return nil, errors.New("not found")
				}
				return b, nil
			},
			Delegate: w.delegate,
		})
		if err != nil {
			t.Fatal(err)
		}
		w.execs = append(w.execs, ex)
		t.Cleanup(func() { ex.Close(context.Background()) })
	}
	return w
}

// delegate runs a sub-call on the next executor, over a pipe.
func (w *world) delegate(ctx context.Context, c *call.Call, code []byte) (*call.Result, error) {
	ex := w.execs[w.next.Add(1)%uint64(len(w.execs))]
	return w.over(ctx, ex, c, code)
}

// over makes c on ex over a pipe, as a requester does over a stream.
func (w *world) over(ctx context.Context, ex *Executor, c *call.Call, code []byte) (*call.Result, error) {
	a, b := net.Pipe()
	var wg sync.WaitGroup
	wg.Go(func() {
		defer b.Close()
		w.runs.Add(1)
		ex.Serve(ctx, b)
	})
	defer wg.Wait()
	defer a.Close()
	stop := context.AfterFunc(ctx, func() { a.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	return call.Do(a, c, code)
}

// module publishes the module built from pkg with a manifest signed by
// the world's author, and returns its hash and bytes.
func (w *world) module(pkg string, perms manifest.Permissions, lim manifest.Limits, fns ...string) ([32]byte, []byte, []byte) {
	code, hash := wasmbuild.Module(w.t, pkg)
	raw := w.sign(code, perms, lim, w.author, fns...)
	w.mu.Lock()
	w.manifests[hash] = append(w.manifests[hash], raw)
	w.blobs[hash] = code
	w.mu.Unlock()
	return hash, code, raw
}

func (w *world) sign(code []byte, perms manifest.Permissions, lim manifest.Limits, author *keys.IdentityPrivateKey, fns ...string) []byte {
	if lim.MemoryPages == 0 {
		lim.MemoryPages = 256
	}
	if lim.TimeoutMS == 0 {
		lim.TimeoutMS = 60000
	}
	if lim.MaxOutput == 0 {
		lim.MaxOutput = 1 << 20
	}
	if perms&manifest.PermSubCalls != 0 && lim.MaxDepth == 0 {
		lim.MaxDepth, lim.MaxFanOut = 8, 64
	}
	m := &manifest.Manifest{ModuleHash: sha256.Sum256(code), ModuleSize: uint32(len(code)), Functions: fns,
		Permissions: perms, Limits: lim, Created: time.Now().Unix()}
	raw, err := m.Sign(testNetwork, author)
	if err != nil {
		w.t.Fatal(err)
	}
	return raw
}

func newCall(h [32]byte, fn string, in []byte) *call.Call {
	return &call.Call{Module: h, Function: fn, Depth: 8, Budget: 1000, Timeout: time.Minute, Input: call.Literal(in)}
}

func (w *world) run(c *call.Call, code []byte) *call.Result {
	w.t.Helper()
	res, err := w.over(context.Background(), w.execs[0], c, code)
	if err != nil {
		w.t.Fatal(err)
	}
	return res
}

func wantStatus(t *testing.T, res *call.Result, st call.Status, reason string) {
	t.Helper()
	if res.Status != st || !strings.Contains(res.Reason, reason) {
		t.Fatalf("result %v %q, want %v with %q", res.Status, res.Reason, st, reason)
	}
}

func TestWordCount(t *testing.T) {
	w := newWorld(t, 1, Policy{})
	h, _, _ := w.module(wasmbuild.WordCount, 0, manifest.Limits{}, "count")
	res := w.run(newCall(h, "count", []byte("one two  three\n")), nil)
	if res.Status != call.OK || string(res.Output) != "3" || res.Used != 1 {
		t.Fatalf("result %+v", res)
	}
	if st := w.execs[0].Stats(); st.FromDHT != 1 || st.OK != 1 || st.Modules != 1 {
		t.Errorf("stats %+v", st)
	}
	// The second call takes the module from the cache.
	w.run(newCall(h, "count", []byte("x")), nil)
	if st := w.execs[0].Stats(); st.FromDHT != 1 {
		t.Errorf("fetched again: %+v", st)
	}
}

// Inputs: a blob of the DHT, verified, and the output of another call.
func TestInputSources(t *testing.T) {
	w := newWorld(t, 1, Policy{})
	h, _, _ := w.module(wasmbuild.WordCount, 0, manifest.Limits{}, "count")
	text := []byte("a b c d e")
	bh := sha256.Sum256(text)
	w.blobs[bh] = text
	c := newCall(h, "count", nil)
	c.Input = call.Input{Kind: call.InputBlob, Blob: bh}
	if res := w.run(c, nil); string(res.Output) != "5" {
		t.Fatalf("blob input: %+v", res)
	}
	// A blob whose content does not match its hash is refused.
	lie := sha256.Sum256([]byte("other"))
	w.blobs[lie] = text
	c.Input.Blob = lie
	wantStatus(t, w.run(c, nil), call.BadInput, "does not match")
	// count(count("a b c d e")) = count("5") = 1, two calls of the tree.
	c.Input = call.Input{Kind: call.InputCall, Call: newCall(h, "count", text)}
	res := w.run(c, nil)
	if string(res.Output) != "1" || res.Used != 2 {
		t.Fatalf("call input: %+v", res)
	}
}

// Before anything runs, the executor checks hash, signature and its
// policy, and says why it refuses.
func TestRefusals(t *testing.T) {
	stranger, _ := keys.GenerateIdentity(nil)
	w := newWorld(t, 1, Policy{Authors: nil, MemoryPages: 512})
	h, code, raw := w.module(wasmbuild.WordCount, 0, manifest.Limits{}, "count")

	t.Run("unknown function", func(t *testing.T) {
		wantStatus(t, w.run(newCall(h, "nope", nil), nil), call.BadModule, `no function "nope"`)
	})
	t.Run("unknown module", func(t *testing.T) {
		wantStatus(t, w.run(newCall([32]byte{1}, "count", nil), nil), call.NoModule, "no manifest")
	})
	t.Run("tampered manifest", func(t *testing.T) {
		bad := bytes.Clone(raw)
		bad[len(bad)-1] ^= 1
		c := newCall(h, "count", nil)
		c.Manifest = bad
		wantStatus(t, w.run(c, nil), call.BadModule, "signature")
	})
	t.Run("manifest of another network", func(t *testing.T) {
		m, _ := manifest.Parse(raw)
		other, err := m.Sign("another-network", w.author)
		if err != nil {
			t.Fatal(err)
		}
		c := newCall(h, "count", nil)
		c.Manifest = other
		wantStatus(t, w.run(c, nil), call.BadModule, "signature")
	})
	t.Run("memory over policy", func(t *testing.T) {
		c := newCall(h, "count", nil)
		c.Manifest = w.sign(code, 0, manifest.Limits{MemoryPages: 1024}, w.author, "count")
		wantStatus(t, w.run(c, nil), call.Refused, "1024 memory pages")
	})
	t.Run("author not allowed", func(t *testing.T) {
		w2 := newWorld(t, 1, Policy{Authors: []keys.IdentityPublicKey{stranger.Public()}})
		h2, _, _ := w2.module(wasmbuild.WordCount, 0, manifest.Limits{}, "count")
		wantStatus(t, w2.run(newCall(h2, "count", nil), nil), call.Refused, "author")
	})
	t.Run("bytes do not match the hash", func(t *testing.T) {
		// The DHT holds other bytes under the module's hash: they are
		// checked against the manifest before anything runs.
		w3 := newWorld(t, 1, Policy{})
		h3, _, _ := w3.module(wasmbuild.WordCount, 0, manifest.Limits{}, "count")
		evil, _ := wasmbuild.Module(t, wasmbuild.Evil)
		w3.blobs[h3] = evil
		wantStatus(t, w3.run(newCall(h3, "count", nil), nil), call.NoModule, "manifest says")
		// And the requester's bytes, when it offers them, are checked alike.
		c := newCall(h3, "count", nil)
		res, err := w3.over(context.Background(), w3.execs[0], c, evil)
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, res, call.BadModule, "from the requester")
		if st := w3.execs[0].Stats(); st.Modules != 0 || st.OK != 0 {
			t.Errorf("a module that failed its hash was kept or run: %+v", st)
		}
	})
	t.Run("offered module", func(t *testing.T) {
		w4 := newWorld(t, 1, Policy{})
		c := newCall(h, "count", []byte("a b"))
		c.Manifest = raw
		res, err := w4.over(context.Background(), w4.execs[0], c, code)
		if err != nil || string(res.Output) != "2" {
			t.Fatalf("%+v %v", res, err)
		}
		if st := w4.execs[0].Stats(); st.FromAsker != 1 {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("malformed CALL", func(t *testing.T) {
		a, b := net.Pipe()
		go func() {
			call.WriteFrame(a, call.FrameCall, []byte{9, 9, 9})
		}()
		done := make(chan struct{})
		go func() { defer close(done); w.execs[0].Serve(context.Background(), b) }()
		_, body, err := call.ReadFrame(a, 0, call.FrameResult)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := call.ParseResult(body)
		wantStatus(t, r, call.Malformed, "version")
		<-done
		a.Close()
		b.Close()
	})
}

// Abuse: a module that loops, eats memory or writes too much is stopped
// at its limit while the executor keeps serving other calls.
func TestLimitsWhileServing(t *testing.T) {
	w := newWorld(t, 1, Policy{Timeout: time.Minute, MaxOutput: 4096, Capacity: 4})
	evil, evilCode, _ := w.module(wasmbuild.Evil, 0, manifest.Limits{}, "loop", "membomb", "bigout")
	// The loop's manifest asks for 2 s; the memory bomb keeps the
	// policy's minute, so that a loaded machine cannot make it time out
	// before it reaches the memory limit.
	loop := newCall(evil, "loop", nil)
	loop.Manifest = w.sign(evilCode, 0, manifest.Limits{TimeoutMS: 2000}, w.author, "loop")
	wc, _, _ := w.module(wasmbuild.WordCount, 0, manifest.Limits{}, "count")
	w.run(newCall(wc, "count", nil), nil) // compiled and cached

	var wg sync.WaitGroup
	results := make([]*call.Result, 3)
	for i, c := range []*call.Call{loop, newCall(evil, "membomb", nil), newCall(evil, "bigout", []byte("100000"))} {
		wg.Go(func() { results[i] = w.run(c, nil) })
	}
	// Meanwhile honest calls are answered.
	for i := range 5 {
		res := w.run(newCall(wc, "count", []byte(strings.Repeat("w ", i+1))), nil)
		if string(res.Output) != strconv.Itoa(i+1) {
			t.Errorf("honest call %d: %+v", i, res)
		}
	}
	wg.Wait()
	wantStatus(t, results[0], call.Timeout, "time limit")
	wantStatus(t, results[1], call.Memory, "memory")
	wantStatus(t, results[2], call.OutputTooLarge, "output")
}

// A call beyond Capacity is refused at once as Busy; the requester tries
// another executor.
func TestBusy(t *testing.T) {
	w := newWorld(t, 1, Policy{Capacity: 1, Timeout: 3 * time.Second})
	evil, _, _ := w.module(wasmbuild.Evil, 0, manifest.Limits{}, "loop")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *call.Result, 1)
	go func() {
		res, _ := w.over(ctx, w.execs[0], newCall(evil, "loop", nil), nil)
		done <- res
	}()
	deadline := time.Now().Add(30 * time.Second)
	for w.execs[0].Stats().Running == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	res := w.run(newCall(evil, "loop", nil), nil)
	wantStatus(t, res, call.Busy, "1 calls at once")
	if e, _ := errors.AsType[*call.Error](res.Err()); !e.Retryable() {
		t.Error("Busy is not retryable")
	}
	cancel() // the requester gives up: the loop stops
	<-done
}

// Depth bombs stop at the depth limit, fan-out bombs at the fan-out
// limit, and a tree that would grow to thousands of calls at its budget.
func TestCallTreeLimits(t *testing.T) {
	w := newWorld(t, 3, Policy{MaxDepth: 3, MaxFanOut: 4, Timeout: time.Minute})
	evil, _, _ := w.module(wasmbuild.Evil, manifest.PermSubCalls, manifest.Limits{}, "subcalls")
	t.Run("depth", func(t *testing.T) {
		w.runs.Store(0)
		c := newCall(evil, "subcalls", chainInput(evil, 1, 10))
		res := w.run(c, nil)
		if res.Status != call.OK {
			t.Fatalf("%+v", res)
		}
		// Root plus MaxDepth levels ran; the level below was refused.
		if got := w.runs.Load(); got != 4 {
			t.Errorf("%d calls ran, want 4 (the root and 3 levels)", got)
		}
		if res.Used != 4 {
			t.Errorf("Used %d, want 4", res.Used)
		}
		if !strings.Contains(string(res.Output), "err:-3") {
			t.Errorf("the deepest level did not see its sub-call fail: %q", res.Output)
		}
	})
	t.Run("fan-out", func(t *testing.T) {
		wc, _, _ := w.module(wasmbuild.WordCount, 0, manifest.Limits{}, "count")
		in := append([]byte{50}, wc[:]...)
		in = append(in, byte(len("count")))
		in = append(in, "count"...)
		res := w.run(newCall(evil, "subcalls", in), nil)
		wantStatus(t, res, call.Limit, "sub-call limit")
	})
	t.Run("budget", func(t *testing.T) {
		w.runs.Store(0)
		c := newCall(evil, "subcalls", chainInput(evil, 4, 10))
		c.Budget = 20
		res := w.run(c, nil)
		if got := w.runs.Load(); got > 20 {
			t.Errorf("%d calls ran with a budget of 20", got)
		}
		if res.Used > 20 {
			t.Errorf("Used %d > 20", res.Used)
		}
		t.Logf("a 4-ary tree of depth 3 (85 calls) within a budget of 20: %d ran, result %v", w.runs.Load(), res.Status)
	})
}

// chainInput is an input for evil's subcalls that makes each level call
// subcalls of the same module with fan-out n, levels deep: the input of
// level k carries the input of level k+1.
func chainInput(mod [32]byte, n, levels int) []byte {
	var in []byte
	for range levels {
		head := append([]byte{byte(n)}, mod[:]...)
		head = append(head, byte(len("subcalls")))
		head = append(head, "subcalls"...)
		in = append(head, in...)
	}
	return in
}

// Cancelling the root cancels the tree: every level's run ends.
func TestCancelTree(t *testing.T) {
	w := newWorld(t, 2, Policy{MaxDepth: 2, Timeout: time.Minute})
	evil, _, _ := w.module(wasmbuild.Evil, manifest.PermSubCalls, manifest.Limits{}, "subcalls", "loop")
	in := append([]byte{1}, evil[:]...)
	in = append(in, byte(len("loop")))
	in = append(in, "loop"...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := w.over(ctx, w.execs[0], newCall(evil, "subcalls", in), nil)
		done <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	for w.execs[1].Stats().Running == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if w.execs[1].Stats().Running == 0 {
		t.Fatal("the sub-call never started")
	}
	cancel()
	<-done
	for time.Now().Before(deadline) && (w.execs[0].Stats().Running != 0 || w.execs[1].Stats().Running != 0) {
		time.Sleep(5 * time.Millisecond)
	}
	for i, ex := range w.execs {
		if r := ex.Stats().Running; r != 0 {
			t.Errorf("executor %d still runs %d calls after the root was cancelled", i, r)
		}
	}
}

// A manifest sent with a call serves that call only: a requester that
// signs its own manifest for a module (anyone can) cannot change what
// other requesters' calls of the module run under.
func TestSentManifestDoesNotStick(t *testing.T) {
	w := newWorld(t, 1, Policy{})
	h, code, _ := w.module(wasmbuild.WordCount, 0, manifest.Limits{}, "count")
	w.run(newCall(h, "count", []byte("a")), nil) // cached, with the DHT's manifest
	stranger, _ := keys.GenerateIdentity(nil)
	c := newCall(h, "other", nil)
	c.Manifest = w.sign(code, 0, manifest.Limits{}, stranger, "other")
	wantStatus(t, w.run(c, nil), call.BadModule, "no such function") // listed, but no export
	res := w.run(newCall(h, "count", []byte("a b")), nil)
	if res.Status != call.OK || string(res.Output) != "2" {
		t.Fatalf("after a stranger's manifest, an honest call got %v %q", res.Status, res.Reason)
	}
}
