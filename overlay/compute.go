package overlay

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/darkmatter/darkmatter/apps/compute/call"
	"github.com/darkmatter/darkmatter/apps/compute/executor"
	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/circuit/protover"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
	"github.com/tetratelabs/wazero"
)

// ExecutorConfig makes a relay an executor of delegated calls
// (Config.Executor; spec/compute.md §5).
type ExecutorConfig struct {
	// Policy is what the executor runs (executor.Policy; zero fields take
	// their defaults).
	Policy executor.Policy
	// SubcallHops is the length of the circuits that carry its modules'
	// sub-calls to other executors: 3 by default; 1 or 2 only where its
	// operator trusts the executors it calls (a 1-hop circuit shows them
	// this relay's address, never the requester's).
	SubcallHops int
	// CompileCacheDir, if set, is where compiled modules are kept across
	// restarts (and shared by the executors of one process).
	CompileCacheDir string
}

// DefaultCallTimeout is CallOptions.Timeout when zero.
const DefaultCallTimeout = 30 * time.Second

// Call bounds.
const (
	// callAttempts is how many executors a call or sub-call tries.
	callAttempts = 3
	// callCircuitAge is how long a circuit to an executor is reused.
	callCircuitAge = 10 * time.Minute
	// maxCallCircuits bounds the circuits to executors a node keeps.
	maxCallCircuits = 32
	// maxHolderModules and maxHolders bound what a node remembers of which
	// executors ran which modules.
	maxHolderModules = 256
	maxHolders       = 8
	// executorBackoff is how long an executor that failed a call is
	// passed over.
	executorBackoff = time.Minute
)

// CallOptions are the optional parts of a call (Node.CallWith).
type CallOptions struct {
	// Input replaces the literal input of Call: a blob or another call's
	// output (call.Input).
	Input *call.Input
	// Code are the module's bytes, sent to an executor that asks for them
	// (it lacks the module and cannot find it in the DHT).
	Code []byte
	// Manifest is the module's signed manifest, sent with the call.
	Manifest []byte
	// Timeout bounds the whole call (default DefaultCallTimeout).
	Timeout time.Duration
	// Depth is how many levels of sub-calls the call tree may have (default
	// executor.DefaultMaxDepth; each executor lowers it to its own policy).
	Depth uint8
	// Budget is the most calls the whole tree may run (default
	// executor.DefaultMaxBudget).
	Budget uint16
	// Executor, when set, is the only executor tried.
	Executor *keys.NodeID
	// Executors, when set (and Executor is not), are the executors tried,
	// in this order, instead of a choice (at most 3 of them).
	Executors []keys.NodeID
}

// CallResult is a successful call's output and where it ran.
type CallResult struct {
	Output   []byte
	Executor keys.NodeID // the executor that ran it (the circuit's last hop)
	Used     int         // calls the tree ran
}

// compute is the node's delegated-call state: its executor, if any, the
// circuits to executors it reuses, and what it learned of them.
type compute struct {
	exec *executor.Executor // nil unless Config.Executor

	mu       sync.Mutex
	circs    map[circKey]*circuit.ClientCirc
	holders  map[[32]byte][]keys.NodeID // executors that ran a module for us, most recent last
	failed   map[keys.NodeID]time.Time  // executors passed over until then
	inflight map[keys.NodeID]int        // this node's calls in flight on each executor

	calls, ok, retries atomic.Uint64

	// prevs are the previous hops of the last calls served, so that
	// tests can check that an executor never sees a requester's address.
	prevMu sync.Mutex
	prevs  []string
}

// maxPrevs bounds compute.prevs.
const maxPrevs = 64

func (cp *compute) notePrev(a net.Addr) {
	s := "none"
	if a != nil {
		s = a.String()
	}
	cp.prevMu.Lock()
	defer cp.prevMu.Unlock()
	if len(cp.prevs) == maxPrevs {
		cp.prevs = append(cp.prevs[:0], cp.prevs[1:]...)
	}
	cp.prevs = append(cp.prevs, s)
}

func (cp *compute) prevHops() []string {
	cp.prevMu.Lock()
	defer cp.prevMu.Unlock()
	return slices.Clone(cp.prevs)
}

type circKey struct {
	id   keys.NodeID
	hops int
}

// startExecutor creates the executor of a relay with Config.Executor.
func (n *Node) startExecutor() error {
	ec := n.cfg.Executor
	if ec == nil || !n.isRelay() {
		return nil
	}
	if ec.SubcallHops == 0 {
		ec.SubcallHops = 3
	}
	if ec.SubcallHops < 1 || ec.SubcallHops > 3 {
		return fmt.Errorf("overlay: executor sub-call circuits of %d hops (1..3)", ec.SubcallHops)
	}
	var cache wazero.CompilationCache
	if ec.CompileCacheDir != "" {
		var err error
		if cache, err = compileCache(ec.CompileCacheDir); err != nil {
			return fmt.Errorf("overlay: executor compile cache: %w", err)
		}
	}
	ex, err := executor.New(context.Background(), executor.Config{
		CompileCache: cache,
		Network:      n.cfg.Network,
		Policy:       ec.Policy,
		Manifests:    n.moduleManifests,
		Blob:         n.GetBlob,
		Delegate:     n.delegate,
		Logf:         n.logf.Printf,
	})
	if err != nil {
		return err
	}
	n.compute.exec = ex
	return nil
}

// compileCaches are the on-disk compilation caches of this process, one
// per directory, so that the executors of one process (the testnet's)
// share one in memory as well.
var compileCaches struct {
	sync.Mutex
	m map[string]wazero.CompilationCache
}

func compileCache(dir string) (wazero.CompilationCache, error) {
	compileCaches.Lock()
	defer compileCaches.Unlock()
	if c, ok := compileCaches.m[dir]; ok {
		return c, nil
	}
	c, err := wazero.NewCompilationCacheWithDir(dir)
	if err != nil {
		return nil, err
	}
	if compileCaches.m == nil {
		compileCaches.m = make(map[string]wazero.CompilationCache)
	}
	compileCaches.m[dir] = c
	return c, nil
}

// computeHandler serves BEGIN_COMPUTE streams at an executor.
type computeHandler struct{ n *Node }

// ServeStream implements circuit.StreamHandler.
func (h computeHandler) ServeStream(ctx context.Context, req *circuit.StreamRequest) {
	ex := h.n.compute.exec
	if ex == nil {
		return // rejected MISC
	}
	st, err := req.Accept()
	if err != nil {
		return
	}
	defer st.Close()
	h.n.compute.notePrev(req.PrevHop())
	ex.Serve(ctx, st)
}

// computeDescriptor adds the executor's capacity to its descriptor.
func (n *Node) computeDescriptor(d *descriptor.Descriptor) error {
	ex := n.compute.exec
	if ex == nil {
		return nil
	}
	p := ex.Policy()
	return d.SetCompute(descriptor.Compute{
		Capacity:    uint16(min(p.Capacity, 65535)),
		MemoryPages: p.MemoryPages,
		Timeout:     p.Timeout.Truncate(time.Millisecond),
		MaxDepth:    p.MaxDepth,
	})
}

// Executor returns the node's executor, or nil.
func (n *Node) Executor() *executor.Executor { return n.compute.exec }

// Call runs function of the module whose SHA-256 is module on input, on an
// executor at the end of a circuit, and returns the output. The executor
// finds the module in its cache or the DHT (Node.PublishModule). A failure
// the executor reports is a *call.Error with its reason.
func (n *Node) Call(ctx context.Context, module [32]byte, function string, input []byte) ([]byte, error) {
	r, err := n.CallWith(ctx, module, function, input, CallOptions{})
	if err != nil {
		return nil, err
	}
	return r.Output, nil
}

// CallWith is Call with options. It tries up to 3 executors, chosen by
// advertised capacity, measured reliability and whether they likely hold
// the module, the least loaded with this node's calls first; it moves on
// from one that cannot be reached, is busy, or cannot get the module.
func (n *Node) CallWith(ctx context.Context, module [32]byte, function string, input []byte, o CallOptions) (*CallResult, error) {
	if o.Timeout == 0 {
		o.Timeout = DefaultCallTimeout
	}
	if o.Depth == 0 {
		o.Depth = executor.DefaultMaxDepth
	}
	if o.Budget == 0 {
		o.Budget = executor.DefaultMaxBudget
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	c := &call.Call{Module: module, Function: function, Depth: o.Depth, Budget: o.Budget,
		Timeout: o.Timeout.Truncate(time.Millisecond), Manifest: o.Manifest, Input: call.Literal(input)}
	if o.Input != nil {
		c.Input = *o.Input
	}
	hops := n.mgrPathLen()
	only := o.Executors
	if o.Executor != nil {
		only = []keys.NodeID{*o.Executor}
	}
	return n.callOn(ctx, c, o.Code, hops, only)
}

// delegate is the executor's Delegate: a sub-call over a circuit of this
// node's own, SubcallHops long.
func (n *Node) delegate(ctx context.Context, c *call.Call, code []byte) (*call.Result, error) {
	r, err := n.callOn(ctx, c, code, n.cfg.Executor.SubcallHops, nil)
	if err != nil {
		if res, ok := errors.AsType[*call.Error](err); ok {
			return &call.Result{Status: res.Status, Reason: res.Reason, Used: 1}, nil
		}
		return nil, err
	}
	return &call.Result{Status: call.OK, Output: r.Output, Used: uint16(min(r.Used, 65535))}, nil
}

func (n *Node) mgrPathLen() int {
	if n.cfg.PathLen > 0 {
		return n.cfg.PathLen
	}
	return 3
}

// callOn makes c on up to callAttempts executors (or only those in only).
func (n *Node) callOn(ctx context.Context, c *call.Call, code []byte, hops int, only []keys.NodeID) (*CallResult, error) {
	n.compute.calls.Add(1)
	cands := only
	if cands == nil {
		cands = n.executorsFor(c.Module)
	}
	if len(cands) == 0 {
		return nil, errors.New("overlay: no executor known (no relay advertises Compute=1)")
	}
	var err error
	var tried []keys.NodeID
	for i := range callAttempts {
		id, ok := n.takeExecutor(cands, tried, only != nil)
		if !ok {
			break
		}
		tried = append(tried, id)
		if i > 0 {
			n.compute.retries.Add(1)
		}
		var res *call.Result
		res, err = n.callExecutor(ctx, id, hops, c, code)
		n.releaseExecutor(id)
		if err == nil {
			if err = res.Err(); err == nil {
				n.noteHolder(c.Module, id)
				n.compute.ok.Add(1)
				return &CallResult{Output: res.Output, Executor: id, Used: int(res.Used)}, nil
			}
			if e, _ := errors.AsType[*call.Error](err); !e.Retryable() {
				return nil, err // the module's own failure: another executor would fail alike
			}
		}
		if ctx.Err() != nil {
			return nil, err
		}
		n.noteExecutorFailed(id)
		n.logf.Printf("overlay: call on an executor failed, trying another: %v", err)
	}
	return nil, err
}

// takeExecutor returns the first of cands not in tried with the fewest
// calls of this node in flight (or just the first, when ordered), and
// counts one more call on it: parallel sub-calls of one module spread over
// the executors there are.
func (n *Node) takeExecutor(cands, tried []keys.NodeID, ordered bool) (keys.NodeID, bool) {
	cp := &n.compute
	cp.mu.Lock()
	defer cp.mu.Unlock()
	best, found := keys.NodeID{}, false
	for _, id := range cands {
		if slices.Contains(tried, id) {
			continue
		}
		if !found || cp.inflight[id] < cp.inflight[best] {
			best, found = id, true
		}
		if ordered {
			break
		}
	}
	if found {
		if cp.inflight == nil {
			cp.inflight = make(map[keys.NodeID]int)
		}
		cp.inflight[best]++
	}
	return best, found
}

func (n *Node) releaseExecutor(id keys.NodeID) {
	cp := &n.compute
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.inflight[id]--; cp.inflight[id] <= 0 {
		delete(cp.inflight, id)
	}
}

// callExecutor makes c over a stream to executor id.
func (n *Node) callExecutor(ctx context.Context, id keys.NodeID, hops int, c *call.Call, code []byte) (*call.Result, error) {
	cc, err := n.callCircuit(ctx, id, hops)
	if err != nil {
		return nil, err
	}
	st, err := cc.OpenComputeStream(ctx)
	if err != nil {
		n.dropCallCircuit(id, hops, cc)
		return nil, err
	}
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { st.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	// What is left of the caller's time is what the executor may use.
	if dl, ok := ctx.Deadline(); ok {
		cp := *c
		cp.Timeout = max(time.Millisecond, min(c.Timeout, time.Until(dl).Truncate(time.Millisecond)))
		c = &cp
	}
	res, err := call.Do(st, c, code)
	if err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("overlay: call: %w", ctx.Err())
	}
	return res, err
}

// callCircuit returns a circuit to executor id of hops hops, reusing one
// built in the last callCircuitAge.
func (n *Node) callCircuit(ctx context.Context, id keys.NodeID, hops int) (*circuit.ClientCirc, error) {
	k := circKey{id, hops}
	cp := &n.compute
	cp.mu.Lock()
	if cc := cp.circs[k]; cc != nil {
		select {
		case <-cc.Done():
		default:
			if time.Since(cc.Created()) < callCircuitAge {
				cp.mu.Unlock()
				return cc, nil
			}
		}
		delete(cp.circs, k)
		go cc.Close() // streams in flight on it finish first
	}
	cp.mu.Unlock()
	d := n.dir.Get(id)
	if d == nil {
		return nil, errors.New("overlay: executor not in the directory")
	}
	h, ok := n.hopOf(d)
	if !ok {
		return nil, errors.New("overlay: no transport reaches the executor")
	}
	cc, err := n.mgr.BuildToHops(ctx, h, hops)
	if err != nil {
		return nil, err
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.circs == nil {
		cp.circs = make(map[circKey]*circuit.ClientCirc)
	}
	if old := cp.circs[k]; old != nil {
		go cc.Close() // another call built one meanwhile: share it
		return old, nil
	}
	if len(cp.circs) >= maxCallCircuits {
		for ok, old := range cp.circs {
			delete(cp.circs, ok)
			go old.Close()
			break
		}
	}
	cp.circs[k] = cc
	return cc, nil
}

func (n *Node) dropCallCircuit(id keys.NodeID, hops int, cc *circuit.ClientCirc) {
	cp := &n.compute
	cp.mu.Lock()
	if cp.circs[circKey{id, hops}] == cc {
		delete(cp.circs, circKey{id, hops})
	}
	cp.mu.Unlock()
	cc.Close()
}

// closeCompute closes the circuits to executors; closeExecutor, once no
// stream handler runs, the executor.
func (n *Node) closeCompute() {
	cp := &n.compute
	cp.mu.Lock()
	circs := cp.circs
	cp.circs = nil
	cp.mu.Unlock()
	for _, cc := range circs {
		cc.Close()
	}
}

func (n *Node) closeExecutor() {
	if n.compute.exec != nil {
		n.compute.exec.Close(context.Background())
	}
}

// executorsFor returns the executors to try for module, best first:
// drawn at random, weighted by advertised capacity, doubled for a relay
// the directory finds reliable, four times for one that ran the module
// for us before, and twice for the two whose IDs are closest to a hash of
// the module (so that callers of one module tend to meet the executors
// that cache it). Executors that failed a call in the last minute come
// last. This node is never one.
func (n *Node) executorsFor(module [32]byte) []keys.NodeID {
	self := n.NodeID()
	cp := &n.compute
	cp.mu.Lock()
	holders := slices.Clone(cp.holders[module])
	now := time.Now()
	failed := make(map[keys.NodeID]bool)
	for id, until := range cp.failed {
		if now.Before(until) {
			failed[id] = true
		} else {
			delete(cp.failed, id)
		}
	}
	cp.mu.Unlock()

	type cand struct {
		id   keys.NodeID
		w    float64
		dist uint64
	}
	var cands []cand
	for _, e := range n.dir.Entries() {
		d := e.Desc
		id := d.Identity.NodeID()
		if id == self || !d.Protocols.Supports(protover.Compute, 1) {
			continue
		}
		cmp, ok := d.Compute()
		if !ok {
			continue
		}
		if _, ok := n.hopOf(d); !ok {
			continue
		}
		w := float64(min(cmp.Capacity, 64))
		if e.Info.Confirmed && e.Info.Failures <= e.Info.Successes+2 {
			w *= 2
		}
		if slices.Contains(holders, id) {
			w *= 4
		}
		h := sha256.Sum256(append(module[:], id[:]...))
		cands = append(cands, cand{id, w, binary.BigEndian.Uint64(h[:8])})
	}
	// Rendezvous hashing: the two with the smallest hash of (module, ID).
	slices.SortFunc(cands, func(a, b cand) int { return cmp.Compare(a.dist, b.dist) })
	for i := range min(2, len(cands)) {
		cands[i].w *= 2
	}
	// Weighted order without replacement (Efraimidis–Spirakis keys).
	type keyed struct {
		id  keys.NodeID
		key float64
		bad bool
	}
	order := make([]keyed, len(cands))
	for i, c := range cands {
		u := rand.Float64()
		order[i] = keyed{c.id, -expKey(u) / c.w, failed[c.id]}
	}
	slices.SortFunc(order, func(a, b keyed) int {
		if a.bad != b.bad { // executors that failed lately come last
			if a.bad {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.key, b.key)
	})
	out := make([]keys.NodeID, len(order))
	for i, o := range order {
		out[i] = o.id
	}
	return out
}

// expKey is log(u) for the weighted sampling keys: smaller -log(u)/w first.
func expKey(u float64) float64 {
	if u <= 0 {
		u = 1e-300
	}
	return math.Log(u)
}

func (n *Node) noteHolder(module [32]byte, id keys.NodeID) {
	cp := &n.compute
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.holders == nil {
		cp.holders = make(map[[32]byte][]keys.NodeID)
	}
	hs, known := cp.holders[module]
	if !known && len(cp.holders) >= maxHolderModules {
		for k := range cp.holders {
			delete(cp.holders, k)
			break
		}
	}
	hs = slices.DeleteFunc(hs, func(x keys.NodeID) bool { return x == id })
	hs = append(hs, id)
	if len(hs) > maxHolders {
		hs = hs[len(hs)-maxHolders:]
	}
	cp.holders[module] = hs
}

func (n *Node) noteExecutorFailed(id keys.NodeID) {
	cp := &n.compute
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.failed == nil {
		cp.failed = make(map[keys.NodeID]time.Time)
	}
	if len(cp.failed) < 4096 {
		cp.failed[id] = time.Now().Add(executorBackoff)
	}
}

// CallStats are a node's counters of the calls it made.
type CallStats struct {
	Calls   uint64 // calls and sub-calls made
	OK      uint64 // that returned an output
	Retries uint64 // executors tried after a first one failed
}

// CallStats returns the node's call counters.
func (n *Node) CallStats() CallStats {
	cp := &n.compute
	return CallStats{Calls: cp.calls.Load(), OK: cp.ok.Load(), Retries: cp.retries.Load()}
}
