package overlay

import (
	"context"
	"encoding/hex"
	"errors"
	"github.com/darkmatter/darkmatter/circuit/protover"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/apps/compute/call"
	"github.com/darkmatter/darkmatter/apps/compute/executor"
	"github.com/darkmatter/darkmatter/apps/compute/manifest"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/wasmbuild"
	"github.com/darkmatter/darkmatter/overlay/dht"
)

var compileCacheDir struct {
	sync.Mutex
	dir string
}

// sharedCompileCache returns the package's compilation cache directory,
// made on first use and removed by TestMain.
func sharedCompileCache(t testing.TB) string {
	compileCacheDir.Lock()
	defer compileCacheDir.Unlock()
	if compileCacheDir.dir == "" {
		d, err := os.MkdirTemp("", "overlay-wasm-cache")
		if err != nil {
			t.Fatal(err)
		}
		compileCacheDir.dir = d
	}
	return compileCacheDir.dir
}

func removeCompileCache() {
	compileCacheDir.Lock()
	defer compileCacheDir.Unlock()
	if compileCacheDir.dir != "" {
		os.RemoveAll(compileCacheDir.dir)
	}
	wasmbuild.Cleanup()
}

// computeNet is a harness whose relays are all executors, with DHT store
// limits raised for a publisher of a few modules.
func newComputeNet(t testing.TB, nRelays int, opt func(*Config)) *harness {
	t.Helper()
	cacheDir := sharedCompileCache(t) // a module is compiled once for the package's tests
	h := newHarnessWith(t, "mem", nRelays, func(c *Config) {
		c.DHTMinAge = -1
		c.DHTLimits = dht.StoreLimits{StoresPerMinute: 60000, StoreBurst: 10000, MaxPerOwner: 4096}
		c.DHTRequestRate, c.DHTRequestBurst = 5000, 10000
		if len(c.Listen) > 0 {
			c.Executor = &ExecutorConfig{Policy: executor.Policy{Timeout: time.Minute}, CompileCacheDir: cacheDir}
		}
		if opt != nil {
			opt(c)
		}
	})
	for _, r := range h.relays {
		r.seedDHT()
	}
	t.Cleanup(h.close)
	return h
}

// publish stores the module built from pkg, signed by a fresh author, with
// the given functions and permissions, and returns its hash.
func publish(t testing.TB, n *Node, pkg string, perms manifest.Permissions, fns ...string) ([32]byte, []byte) {
	t.Helper()
	code, hash := wasmbuild.Module(t, pkg)
	author, err := keys.GenerateIdentity(nil)
	if err != nil {
		t.Fatal(err)
	}
	m := &manifest.Manifest{Functions: fns, Permissions: perms, Created: time.Now().Unix(),
		Limits: manifest.Limits{MemoryPages: 256, TimeoutMS: 60000, MaxOutput: 1 << 20}}
	if perms&manifest.PermSubCalls != 0 {
		m.Limits.MaxDepth, m.Limits.MaxFanOut = 4, 8
	}
	if _, err := n.PublishModule(ctxT(t), code, m, author); err != nil {
		t.Fatal(err)
	}
	return hash, code
}

func TestCallWordCount(t *testing.T) {
	h := newComputeNet(t, 5, nil)
	hash, _ := publish(t, h.client, wasmbuild.WordCount, 0, "count")
	out, err := h.client.Call(ctxT(t), hash, "count", []byte("the quick brown fox\njumps over"))
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "6" {
		t.Fatalf("count = %q, want 6", out)
	}
	// A function the manifest does not list is refused with a reason.
	_, err = h.client.Call(ctxT(t), hash, "nope", nil)
	if st, ok := call.StatusOf(err); !ok || st != call.BadModule || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("unknown function: %v", err)
	}
}

func TestCallFanOut(t *testing.T) {
	h := newComputeNet(t, 6, nil)
	wc, _ := publish(t, h.client, wasmbuild.WordCount, 0, "count")
	fo, _ := publish(t, h.client, wasmbuild.FanOut, manifest.PermSubCalls, "count")
	text := strings.Repeat("one two three four five six seven eight nine ten\n", 40)
	in := hex.EncodeToString(wc[:]) + "\n" + text
	r, err := h.client.CallWith(ctxT(t), fo, "count", []byte(in), CallOptions{Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Output) != "400" {
		t.Fatalf("fan-out count = %q, want 400", r.Output)
	}
	if r.Used != 5 {
		t.Errorf("the tree ran %d calls, want 5", r.Used)
	}
	ran := 0
	for _, n := range h.relays {
		if n.NodeID() != r.Executor && n.Executor().Stats().OK > 0 {
			ran++
		}
	}
	if ran < 3 {
		t.Errorf("the sub-calls ran on %d executors, want at least 3", ran)
	}
	checkNeverSeen(t, h, h.cliHost)
}

// checkNeverSeen checks that no executor served a call whose circuit came
// straight from host (the requester): every previous hop is a relay.
func checkNeverSeen(t *testing.T, h *harness, host string) {
	t.Helper()
	relayHosts := map[string]bool{}
	for _, ip := range h.hosts {
		relayHosts[ip] = true
	}
	served := 0
	for _, n := range h.relays {
		for _, p := range n.compute.prevHops() {
			served++
			ip, _, err := net.SplitHostPort(p)
			if err != nil || ip == host || !relayHosts[ip] {
				t.Errorf("an executor served a call whose previous hop was %q (requester %s)", p, host)
			}
		}
	}
	if served == 0 {
		t.Error("no executor recorded a call")
	}
}

func TestCallOffersModule(t *testing.T) {
	h := newComputeNet(t, 4, nil)
	code, hash := wasmbuild.Module(t, wasmbuild.WordCount)
	author, _ := keys.GenerateIdentity(nil)
	m := &manifest.Manifest{ModuleHash: hash, ModuleSize: uint32(len(code)), Functions: []string{"count"}, Created: time.Now().Unix(),
		Limits: manifest.Limits{MemoryPages: 256, TimeoutMS: 60000, MaxOutput: 1 << 20}}
	raw, err := m.Sign(h.client.cfg.Network, author)
	if err != nil {
		t.Fatal(err)
	}
	// Nothing in the DHT: the executor asks for the bytes.
	r, err := h.client.CallWith(ctxT(t), hash, "count", []byte("a b c"), CallOptions{Code: code, Manifest: raw})
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Output) != "3" {
		t.Fatalf("count = %q", r.Output)
	}
	var ex *Node
	for _, n := range h.relays {
		if n.NodeID() == r.Executor {
			ex = n
		}
	}
	if st := ex.Executor().Stats(); st.FromAsker != 1 {
		t.Errorf("executor stats %+v, want one module from the requester", st)
	}
	// Without the bytes to offer, nobody can run it.
	_, err = h.client.CallWith(ctxT(t), [32]byte{1}, "count", nil, CallOptions{})
	if st, ok := call.StatusOf(err); !ok || st != call.NoModule {
		t.Fatalf("unknown module: %v", err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
}

// A call whose executor cannot be reached is retried on another; a data
// source is a blob of the DHT, read by the module and verified.
func TestCallRetryAndSources(t *testing.T) {
	h := newComputeNet(t, 5, nil)
	wc, _ := publish(t, h.client, wasmbuild.WordCount, 0, "count")
	dead := h.relays[3]
	live := h.relays[4].NodeID()
	deadID := dead.NodeID()
	dead.Close()
	r, err := h.client.CallWith(ctxT(t), wc, "count", []byte("a b"), CallOptions{Executors: []keys.NodeID{deadID, live}})
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Output) != "2" || r.Executor != live {
		t.Fatalf("result %+v", r)
	}
	if st := h.client.CallStats(); st.Retries != 1 {
		t.Errorf("call stats %+v, want one retry", st)
	}

	// The render module's "blob" reads a data blob by hash.
	rd, _ := publish(t, h.client, wasmbuild.Render, manifest.PermDataSources, "page", "blob")
	data := []byte(`{"title":"Dark","items":[{"name":"matter","value":"27%"}]}`)
	bh, err := h.client.PutBlob(ctxT(t), data)
	if err != nil {
		t.Fatal(err)
	}
	fromBlob, err := h.client.Call(ctxT(t), rd, "blob", []byte(hex.EncodeToString(bh[:])))
	if err != nil {
		t.Fatal(err)
	}
	direct, err := h.client.Call(ctxT(t), rd, "page", data)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(direct), "<") || string(fromBlob) != string(direct) {
		t.Fatalf("page from the blob %q, from the input %q", fromBlob, direct)
	}
	// An input that is a blob, and one that is another call's output.
	in := call.Input{Kind: call.InputBlob, Blob: bh}
	out, err := h.client.CallWith(ctxT(t), wc, "count", nil, CallOptions{Input: &in})
	if err != nil || string(out.Output) != "1" {
		t.Fatalf("blob input: %+v %v", out, err)
	}
	nested := call.Input{Kind: call.InputCall, Call: &call.Call{Module: rd, Function: "page", Depth: 1, Budget: 1, Timeout: time.Minute, Input: call.Literal(data)}}
	out, err = h.client.CallWith(ctxT(t), wc, "count", nil, CallOptions{Input: &nested})
	if err != nil || out.Used != 2 {
		t.Fatalf("call input: %+v %v", out, err)
	}
	if got, _ := h.client.Call(ctxT(t), wc, "count", direct); string(got) != string(out.Output) {
		t.Errorf("count(page(data)) = %q, want %q", out.Output, got)
	}
}

// Cancelling the root call over real circuits cancels the tree: the
// executor of the root and the one running its sub-call stop long before
// their time limits.
func TestCallCancelTree(t *testing.T) {
	h := newComputeNet(t, 5, nil)
	evil, _ := publish(t, h.client, wasmbuild.Evil, manifest.PermSubCalls, "subcalls", "loop")
	in := append([]byte{1}, evil[:]...)
	in = append(in, byte(len("loop")))
	in = append(in, "loop"...)
	// Compile the module once (into the package's shared cache) first:
	// under the race detector, compiling it takes seconds.
	warm := append([]byte{0}, in[1:]...)
	if _, err := h.client.Call(ctxT(t), evil, "subcalls", warm); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctxT(t))
	done := make(chan error, 1)
	go func() {
		_, err := h.client.Call(ctx, evil, "subcalls", in)
		done <- err
	}()
	running := func() (n int64) {
		for _, r := range h.relays {
			n += r.Executor().Stats().Running
		}
		return n
	}
	for start := time.Now(); running() != 2; time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 45*time.Second {
			t.Fatal("the root and its sub-call never ran together")
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled call: %v", err)
	}
	// The policy's time limit is a minute; ctxT's is 60 s: waitFor gives
	// up well before either.
	waitFor(t, func() bool { return running() == 0 }, "every run of the tree to stop")
}

// Executors that trust their neighbours carry sub-calls over 1-hop
// circuits: a sub-executor's previous hop is then the root executor, and
// still never the requester. A depth bomb stops at the depth limit.
func TestCallSubcallHops(t *testing.T) {
	h := newComputeNet(t, 5, func(c *Config) {
		if c.Executor != nil {
			c.Executor.SubcallHops = 1
			c.Executor.Policy.MaxDepth = 2
		}
	})
	wc, _ := publish(t, h.client, wasmbuild.WordCount, 0, "count")
	fo, _ := publish(t, h.client, wasmbuild.FanOut, manifest.PermSubCalls, "count")
	r, err := h.client.CallWith(ctxT(t), fo, "count", []byte(hex.EncodeToString(wc[:])+"\none two three four five"), CallOptions{Timeout: time.Minute})
	if err != nil || string(r.Output) != "5" {
		t.Fatalf("%+v %v", r, err)
	}
	var rootHost string
	for i, n := range h.relays {
		if n.NodeID() == r.Executor {
			rootHost = h.hosts[i]
		}
	}
	for i, n := range h.relays {
		if n.NodeID() == r.Executor {
			continue
		}
		for _, p := range n.compute.prevHops() {
			if ip, _, _ := net.SplitHostPort(p); ip != rootHost {
				t.Errorf("relay %d served a sub-call whose previous hop was %s, not the root executor %s", i, p, rootHost)
			}
		}
	}
	checkNeverSeen(t, h, h.cliHost)

	evil, _ := publish(t, h.client, wasmbuild.Evil, manifest.PermSubCalls, "subcalls")
	var chain []byte
	for range 10 {
		head := append([]byte{1}, evil[:]...)
		head = append(head, byte(len("subcalls")))
		chain = append(append(head, "subcalls"...), chain...)
	}
	r, err = h.client.CallWith(ctxT(t), evil, "subcalls", chain, CallOptions{Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if r.Used != 3 || !strings.Contains(string(r.Output), "err:-3") {
		t.Errorf("depth bomb: %d calls ran (want 3: the root and 2 levels), output %q", r.Used, r.Output)
	}
}

// Executors are chosen among relays that advertise Compute=1, never this
// node; one that ran the module before is preferred, and one that failed
// lately comes last.
func TestExecutorChoice(t *testing.T) {
	h := newComputeNet(t, 5, func(c *Config) {
		if c.Executor != nil && c.Listen[0] == "mem://10.1.0.1:7000" {
			c.Executor = nil // relay 0 is no executor
		}
	})
	module := [32]byte{7}
	ids := func() []keys.NodeID { return h.client.executorsFor(module) }
	if got := ids(); len(got) != 4 || slices.Contains(got, h.relays[0].NodeID()) {
		t.Fatalf("executors %v: want the 4 relays that advertise Compute=1", got)
	}
	if got := h.relays[1].executorsFor(module); slices.Contains(got, h.relays[1].NodeID()) || len(got) != 3 {
		t.Fatalf("an executor chooses itself or misses one: %v", got)
	}
	holder, failed := h.relays[2].NodeID(), h.relays[3].NodeID()
	h.client.noteHolder(module, holder)
	h.client.noteExecutorFailed(failed)
	first := 0
	for range 400 {
		got := ids()
		if got[len(got)-1] != failed {
			t.Fatal("an executor that failed lately is not last")
		}
		if got[0] == holder {
			first++
		}
	}
	// The holder weighs at least 4 of the other two's 1 or 2 (rendezvous):
	// it comes first in well over a third of the draws.
	if first < 400/3 {
		t.Errorf("the executor that holds the module came first %d times in 400", first)
	}
}

// A delegated call runs on an executor behind NAT, the only one of the
// network, reached through its relayed link.
func TestCallExecutorBehindNAT(t *testing.T) {
	h := newComputeNet(t, 5, func(c *Config) {
		c.Executor = nil
		c.RelayVia = "mem"
	})
	n := natRelayMem(t, h, "10.60.0.1", func(c *Config) {
		c.DHTMinAge = -1
		c.Executor = &ExecutorConfig{Policy: executor.Policy{Timeout: time.Minute}, CompileCacheDir: sharedCompileCache(t)}
	})
	for end := time.Now().Add(30 * time.Second); h.client.dir.Get(n.NodeID()) == nil || len(h.client.dir.Get(n.NodeID()).Addrs) != 1 ||
		!strings.HasPrefix(h.client.dir.Get(n.NodeID()).Addrs[0], "relay://"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("the client never learnt the executor behind NAT")
		}
		h.client.refreshRound()
	}
	hash, _ := publish(t, h.client, wasmbuild.WordCount, 0, "count")
	out, err := h.client.Call(ctxT(t), hash, "count", []byte("one two three"))
	if err != nil {
		for _, d := range h.client.Relays() {
			t.Logf("relay %v %v exec=%v", d.NodeID(), d.Addrs, d.Protocols.Supports(protover.Compute, 1))
		}
		for _, g := range h.client.Manager().PrimaryGuards() {
			t.Logf("guard %v", g.Addr)
		}
		t.Fatal(err)
	}
	if string(out) != "3" {
		t.Fatalf("count = %q, want 3", out)
	}
	if st := n.Executor().Stats(); st.Calls == 0 {
		t.Fatalf("the executor behind NAT ran no call: %+v", st)
	}
}
