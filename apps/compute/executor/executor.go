package executor

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/darkmatter/darkmatter/apps/compute/call"
	"github.com/darkmatter/darkmatter/apps/compute/manifest"
	"github.com/darkmatter/darkmatter/apps/compute/wasm"
	"github.com/tetratelabs/wazero"
)

// Config configures an Executor.
type Config struct {
	// Network is the network name manifests must be signed for.
	Network string
	Policy  Policy
	// Manifests returns the signed manifests stored for a module hash
	// (DHT type 4), unverified. Nil: only manifests that come with calls.
	Manifests func(ctx context.Context, module [32]byte) ([][]byte, error)
	// Blob returns the content of the blob whose SHA-256 is hash (DHT
	// types 5 and 3); the executor checks the hash again. Nil: no module
	// or input comes from the DHT.
	Blob func(ctx context.Context, hash [32]byte) ([]byte, error)
	// Delegate runs a sub-call on another executor over a circuit of the
	// node's own and returns its RESULT; code are the module bytes when
	// this executor holds them, to send if asked. It should retry on
	// another executor a call that failed to arrive or was refused as
	// Busy. Nil refuses sub-calls.
	Delegate func(ctx context.Context, c *call.Call, code []byte) (*call.Result, error)
	// CompileCache, if set, keeps compiled modules for every executor
	// that shares it (wazero.NewCompilationCacheWithDir keeps them on
	// disk across restarts).
	CompileCache wazero.CompilationCache
	// Logf receives the executor's log lines; nil discards them.
	Logf func(format string, args ...any)
}

// Deadlines of a stream's frames.
const (
	// CallReadTimeout bounds the wait for the CALL frame of a stream.
	CallReadTimeout = 30 * time.Second
	// ModuleReadTimeout bounds the wait for the MODULE frame after NEED.
	ModuleReadTimeout = time.Minute
)

// Executor serves delegated calls. Create it with New; it is safe for
// concurrent use.
type Executor struct {
	cfg   Config
	rt    *wasm.Runtime
	cache *cache
	slots chan struct{}
	stats counters
}

// New returns an executor; its policy's zero fields take their defaults.
func New(ctx context.Context, cfg Config) (*Executor, error) {
	cfg.Policy.setDefaults()
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	p := &cfg.Policy
	rt, err := wasm.NewCached(ctx, wasm.Limits{
		MemoryPages: p.MemoryPages,
		Timeout:     p.Timeout,
		MaxOutput:   p.MaxOutput,
		MaxInput:    call.MaxInput,
		MaxSubCalls: max(p.MaxFanOut, 1),
		MaxRuns:     p.Capacity,
		Logf:        cfg.Logf,
	}, cfg.CompileCache)
	if err != nil {
		return nil, err
	}
	return &Executor{cfg: cfg, rt: rt, cache: newCache(p.CacheBytes), slots: make(chan struct{}, p.Capacity)}, nil
}

// Policy returns the policy in force, defaults filled in.
func (e *Executor) Policy() Policy { return e.cfg.Policy }

// Close releases the runtime; calls in progress fail.
func (e *Executor) Close(ctx context.Context) error { return e.rt.Close(ctx) }

// Holds reports whether the executor has the module's bytes cached.
func (e *Executor) Holds(module [32]byte) bool {
	m, ok := e.cache.get(module)
	return ok && m.code != nil
}

// Serve serves one BEGIN_COMPUTE stream: it reads the CALL, runs it, and
// writes the RESULT. It returns when the RESULT is written or ctx ends
// (the stream closing ends it); the caller closes rw.
func (e *Executor) Serve(ctx context.Context, rw io.ReadWriter) {
	setReadDeadline(rw, time.Now().Add(CallReadTimeout))
	_, body, err := call.ReadFrame(rw, 0, call.FrameCall)
	var c *call.Call
	if err == nil {
		c, err = call.Parse(body)
	}
	if err != nil {
		if errors.Is(err, call.ErrMalformed) {
			e.stats.malformed.Add(1)
			e.answer(rw, &call.Result{Status: call.Malformed, Reason: err.Error()})
		}
		return
	}
	select {
	case e.slots <- struct{}{}:
	default:
		e.stats.busy.Add(1)
		e.answer(rw, &call.Result{Status: call.Busy, Reason: fmt.Sprintf("this executor runs %d calls at once", cap(e.slots))})
		return
	}
	res := func() *call.Result {
		defer func() { <-e.slots }()
		e.stats.running.Add(1)
		defer e.stats.running.Add(-1)
		return e.Run(ctx, c, rw)
	}()
	e.answer(rw, res)
}

// answer writes the RESULT; a RESULT too large to encode (it cannot be:
// outputs are bounded by MaxOutput) becomes a failure.
func (e *Executor) answer(w io.Writer, res *call.Result) {
	if res.Status == call.OK {
		e.stats.ok.Add(1)
	} else {
		e.stats.failed.Add(1)
	}
	b, err := res.Marshal()
	if err != nil {
		b, _ = (&call.Result{Status: call.OutputTooLarge, Used: res.Used, Reason: err.Error()}).Marshal()
	}
	_ = call.WriteFrame(w, call.FrameResult, b)
}

// Run runs call c here and returns its RESULT. asker, when not nil, is the
// requester's stream, which Run may ask for the module bytes (NEED) when c
// offers them.
func (e *Executor) Run(ctx context.Context, c *call.Call, asker io.ReadWriter) *call.Result {
	e.stats.calls.Add(1)
	// The requester waits c.Timeout; the run itself gets at most the
	// policy's and the manifest's wall time within that (run).
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	t := &tree{budget: int(min(c.Budget, e.cfg.Policy.MaxBudget)) - 1, used: 1}
	res := e.run(ctx, c, asker, t, 0)
	res.Used = uint16(min(t.used, 65535))
	return res
}

// run runs c within tree t's budget; level is how deep c is nested in
// another call's input.
func (e *Executor) run(ctx context.Context, c *call.Call, asker io.ReadWriter, t *tree, level int) *call.Result {
	mod, res := e.module(ctx, c, asker)
	if res != nil {
		return res
	}
	input, res := e.input(ctx, c, t, level)
	if res != nil {
		return res
	}
	m := mod.m
	p := &e.cfg.Policy
	deadline, _ := ctx.Deadline()
	job := wasm.Job{
		Hash:      m.ModuleHash,
		Code:      mod.code,
		Function:  c.Function,
		Input:     input,
		Timeout:   min(time.Duration(m.Limits.TimeoutMS)*time.Millisecond, p.Timeout, time.Until(deadline)),
		MaxOutput: min(int(m.Limits.MaxOutput), p.MaxOutput),
	}
	if m.Permissions&manifest.PermDataSources != 0 && e.cfg.Blob != nil {
		job.Source = e.source
	}
	depth := min(c.Depth, p.MaxDepth, m.Limits.MaxDepth)
	if m.Permissions&manifest.PermSubCalls != 0 && e.cfg.Delegate != nil && p.MaxFanOut > 0 {
		job.MaxSubCalls = min(int(m.Limits.MaxFanOut), p.MaxFanOut)
		job.Sub = e.subCaller(t, depth, job.MaxSubCalls, deadline)
	} else {
		job.MaxSubCalls = -1
	}
	if job.Timeout <= 0 {
		return &call.Result{Status: call.Timeout, Reason: "no time left for the call"}
	}
	out, err := e.rt.RunJob(ctx, job)
	if err != nil {
		return e.failure(err, t)
	}
	return &call.Result{Status: call.OK, Output: out}
}

// failure maps a run's error to a RESULT. A run that failed after the call
// tree refused one of its sub-calls for a limit is reported as that limit.
func (e *Executor) failure(err error, t *tree) *call.Result {
	st := call.Trap
	switch {
	case errors.Is(err, wasm.ErrTimeout):
		st = call.Timeout
	case errors.Is(err, context.DeadlineExceeded):
		return &call.Result{Status: call.Timeout, Reason: "the requester's time ran out"}
	case errors.Is(err, wasm.ErrMemory):
		st = call.Memory
	case errors.Is(err, wasm.ErrOutputTooLarge):
		st = call.OutputTooLarge
	case errors.Is(err, wasm.ErrSubCallLimit), errors.Is(err, wasm.ErrSourceLimit):
		st = call.Limit
	case errors.Is(err, wasm.ErrInputTooLarge):
		st = call.BadInput
	case errors.Is(err, wasm.ErrHashMismatch), errors.Is(err, wasm.ErrInvalidModule), errors.Is(err, wasm.ErrNoFunction):
		st = call.BadModule
	case errors.Is(err, wasm.ErrBusy), errors.Is(err, wasm.ErrClosed):
		st = call.Busy
	}
	if why := t.limitReason(); why != "" && (st == call.Trap || st == call.Limit) {
		return &call.Result{Status: call.Limit, Reason: why}
	}
	return &call.Result{Status: st, Reason: err.Error()}
}

// source fetches a data source for a module; wasm checks its hash.
func (e *Executor) source(ctx context.Context, hash [32]byte) ([]byte, error) {
	e.stats.sources.Add(1)
	return e.cfg.Blob(ctx, hash)
}

func short(h [32]byte) string { return hex.EncodeToString(h[:6]) }

func setReadDeadline(rw any, t time.Time) {
	if d, ok := rw.(interface{ SetReadDeadline(time.Time) error }); ok {
		_ = d.SetReadDeadline(t)
	}
}

// Stats are an executor's counters.
type Stats struct {
	Calls     uint64 // calls run (nested input calls included)
	OK        uint64 // RESULTs with an output
	Failed    uint64 // RESULTs with a failure (Busy and Malformed included)
	Busy      uint64 // calls refused for capacity
	Malformed uint64 // streams whose CALL broke the protocol
	Running   int64  // calls running now
	SubCalls  uint64 // sub-calls delegated
	Sources   uint64 // data sources fetched for modules
	FromDHT   uint64 // modules fetched from the DHT
	FromAsker uint64 // modules sent by requesters
	Modules   int    // modules cached
	Bytes     int    // bytes of cached modules
}

type counters struct {
	calls, ok, failed, busy, malformed, subCalls, sources, fromDHT, fromAsker atomic.Uint64
	running                                                                   atomic.Int64
}

// Stats returns the executor's counters.
func (e *Executor) Stats() Stats {
	n, b := e.cache.len()
	s := &e.stats
	return Stats{
		Calls: s.calls.Load(), OK: s.ok.Load(), Failed: s.failed.Load(), Busy: s.busy.Load(),
		Malformed: s.malformed.Load(), Running: s.running.Load(), SubCalls: s.subCalls.Load(),
		Sources: s.sources.Load(), FromDHT: s.fromDHT.Load(), FromAsker: s.fromAsker.Load(),
		Modules: n, Bytes: b,
	}
}
