package wasm

import (
	"container/list"
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// SubCaller runs a sub-call (module hash, function, input) elsewhere and
// returns its output. It must return when ctx ends. A nil SubCaller refuses
// sub-calls. Several may run at once.
type SubCaller func(ctx context.Context, module [32]byte, function string, input []byte) ([]byte, error)

// Runtime runs modules. It keeps up to MaxModules compiled modules, keyed by
// the SHA-256 of their bytes, evicting the least recently used. It is safe
// for concurrent use; every Run gets its own module instance.
type Runtime struct {
	l  Limits
	rt wazero.Runtime

	mu     sync.Mutex
	closed bool
	lru    *list.List // of *entry, most recent first
	byHash map[[32]byte]*list.Element

	runs      chan struct{} // one token per run in progress, MaxRuns
	instances atomic.Int64  // module instances created, for tests
}

type entry struct {
	hash [32]byte
	mod  wazero.CompiledModule
}

// sharedCache, when set (by tests), is a compilation cache shared by every
// Runtime, so that each test's new Runtime does not compile the same
// modules again (slow under the race detector).
var sharedCache wazero.CompilationCache

// New returns a Runtime with limits l (zero fields take their defaults).
func New(ctx context.Context, l Limits) (*Runtime, error) {
	return NewCached(ctx, l, nil)
}

// NewCached is New with a compilation cache that several Runtimes may
// share, in memory or on disk (wazero.NewCompilationCacheWithDir), so that
// a module compiled once is not compiled again by another Runtime or after
// a restart. Nil means none.
func NewCached(ctx context.Context, l Limits, cache wazero.CompilationCache) (*Runtime, error) {
	l.setDefaults()
	cfg := wazero.NewRuntimeConfig().
		WithMemoryLimitPages(l.MemoryPages).
		WithCloseOnContextDone(true)
	if cache == nil {
		cache = sharedCache
	}
	if cache != nil {
		cfg = cfg.WithCompilationCache(cache)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("wasm: WASI: %w", err)
	}
	if err := instantiateHost(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("wasm: host module: %w", err)
	}
	return &Runtime{l: l, rt: rt, runs: make(chan struct{}, l.MaxRuns), lru: list.New(), byHash: make(map[[32]byte]*list.Element)}, nil
}

// Limits returns the limits in force, defaults filled in.
func (r *Runtime) Limits() Limits { return r.l }

// Close releases every compiled module and the engine. Runs in progress
// fail.
func (r *Runtime) Close(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	r.lru.Init()
	clear(r.byHash)
	r.mu.Unlock()
	return r.rt.Close(ctx)
}

// Cached reports whether the module with this hash is compiled and cached.
func (r *Runtime) Cached(hash [32]byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.byHash[hash]
	return ok
}

// compiled returns the compiled module for hash, compiling code (already
// verified against hash) if it is not cached.
func (r *Runtime) compiled(ctx context.Context, hash [32]byte, code []byte) (wazero.CompiledModule, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	if el, ok := r.byHash[hash]; ok {
		r.lru.MoveToFront(el)
		r.mu.Unlock()
		return el.Value.(*entry).mod, nil
	}
	r.mu.Unlock()

	// Compile without the lock: it can take long, and other modules run
	// meanwhile. Two Runs compiling the same module keep the first.
	mod, err := r.rt.CompileModule(ctx, code)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidModule, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		_ = mod.Close(ctx)
		return nil, ErrClosed
	}
	if el, ok := r.byHash[hash]; ok {
		_ = mod.Close(ctx)
		r.lru.MoveToFront(el)
		return el.Value.(*entry).mod, nil
	}
	r.byHash[hash] = r.lru.PushFront(&entry{hash: hash, mod: mod})
	for r.lru.Len() > r.l.MaxModules {
		old := r.lru.Remove(r.lru.Back()).(*entry)
		delete(r.byHash, old.hash)
		// Safe while instances of it still run (wazero CompiledModule.Close).
		_ = old.mod.Close(ctx)
	}
	return mod, nil
}

// moduleConfig is the sandbox of every instance: anonymous, no start
// function (Run calls _initialize itself), no files, environment or
// arguments, stdout and stderr discarded, real clocks, crypto randomness.
func moduleConfig() wazero.ModuleConfig {
	return wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions().
		WithSysWalltime().
		WithSysNanotime().
		WithSysNanosleep().
		WithRandSource(rand.Reader)
}
