package wasm

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// errDeadline is the cause of a run's context when its Timeout fires.
var errDeadline = errors.New("wasm: run deadline")

// initFunction is the export Go's c-shared (reactor) modules need called
// once after instantiation.
const initFunction = "_initialize"

// Run runs the exported function of the module code, whose SHA-256 must be
// hash, on input with the Runtime's limits: RunJob with only those fields
// and Sub set. sub carries out the module's sub-calls; nil refuses them.
func (r *Runtime) Run(ctx context.Context, hash [32]byte, code []byte, function string, input []byte, sub SubCaller) ([]byte, error) {
	return r.RunJob(ctx, Job{Hash: hash, Code: code, Function: function, Input: input, Sub: sub})
}

// RunJob verifies that sha256(j.Code) == j.Hash (else ErrHashMismatch, and
// nothing runs), then runs the exported function j.Function of a fresh
// instance of the module on j.Input and returns what it wrote with
// output_write. A function is an export of type () -> (); it fails by
// trapping (ErrTrap). j.Sub carries out the module's sub-calls and j.Source
// fetches its data sources; nil refuses them. j's Timeout, MaxOutput and
// MaxSubCalls may lower the Runtime's limits for this run.
//
// Errors: ErrHashMismatch, ErrInputTooLarge, ErrInvalidModule,
// ErrBusy, ErrNoFunction, ErrTimeout, ErrMemory, ErrOutputTooLarge, ErrSubCallLimit,
// ErrSourceLimit, ErrTrap, ErrClosed, or ctx's error when ctx ends first.
func (r *Runtime) RunJob(ctx context.Context, j Job) ([]byte, error) {
	sum := sha256.Sum256(j.Code)
	if subtle.ConstantTimeCompare(sum[:], j.Hash[:]) != 1 {
		return nil, ErrHashMismatch
	}
	if len(j.Input) > r.l.MaxInput {
		return nil, ErrInputTooLarge
	}
	l := j.limits(r.l)
	select {
	case r.runs <- struct{}{}:
		defer func() { <-r.runs }()
	default:
		return nil, ErrBusy
	}
	// Compiling is the executor's cost, not the module's: it is outside
	// Timeout (and cached).
	compiled, err := r.compiled(ctx, j.Hash, j.Code)
	if err != nil {
		return nil, err
	}
	function := j.Function
	if !isFunction(compiled.ExportedFunctions()[function]) || function == initFunction {
		return nil, fmt.Errorf("%w: %q", ErrNoFunction, function)
	}

	runCtx, cancel := context.WithTimeoutCause(ctx, l.Timeout, errDeadline)
	defer cancel()
	subCtx, cancelSubs := context.WithCancel(runCtx)
	sub := j.Sub
	if j.MaxSubCalls < 0 {
		sub = nil
	}
	st := &runState{l: &l, input: j.Input, sub: sub, source: j.Source, subCtx: subCtx}
	defer st.wg.Wait() // after cancelSubs, below: no sub-call outlives Run
	defer cancelSubs()
	runCtx = context.WithValue(runCtx, stateKey{}, st)

	r.instances.Add(1)
	mod, err := r.rt.InstantiateModule(runCtx, compiled, moduleConfig())
	if err != nil {
		if runCtx.Err() != nil {
			return nil, r.runError(ctx, runCtx, nil, err)
		}
		// An import the ABI does not offer, or a memory above the limit.
		return nil, fmt.Errorf("%w: %w", ErrInvalidModule, err)
	}
	defer mod.Close(context.WithoutCancel(ctx))
	if init := mod.ExportedFunction(initFunction); init != nil {
		if _, err := init.Call(runCtx); err != nil {
			return nil, r.runError(ctx, runCtx, mod, err)
		}
	}
	_, err = mod.ExportedFunction(function).Call(runCtx)
	if st.fail != nil {
		return nil, st.fail
	}
	if runCtx.Err() != nil {
		// Ended by the deadline or the caller even if the module, told so
		// by a host function (-3), returned before wazero stopped it.
		return nil, r.runError(ctx, runCtx, mod, runCtx.Err())
	}
	if err != nil {
		if exit, ok := errors.AsType[*sys.ExitError](err); !ok || exit.ExitCode() != 0 {
			return nil, r.runError(ctx, runCtx, mod, err)
		}
	}
	return st.out, nil
}

func isFunction(d api.FunctionDefinition) bool {
	return d != nil && len(d.ParamTypes()) == 0 && len(d.ResultTypes()) == 0
}

// runError maps what stopped a run to the package's errors. A failed run
// whose memory is within memorySlack of the limit is taken as out of memory:
// a refused memory.grow shows to the module only as -1, on which Go's
// runtime and most allocators give up.
func (r *Runtime) runError(ctx, runCtx context.Context, mod api.Module, err error) error {
	if st := state(runCtx); st != nil && st.fail != nil {
		return st.fail
	}
	switch {
	case context.Cause(runCtx) == errDeadline:
		timeout := r.l.Timeout
		if st := state(runCtx); st != nil {
			timeout = st.l.Timeout
		}
		return fmt.Errorf("%w (%v)", ErrTimeout, timeout)
	case ctx.Err() != nil:
		return fmt.Errorf("wasm: %w", ctx.Err())
	}
	if mod != nil && mod.Memory() != nil {
		limit := uint64(r.l.MemoryPages) * 65536
		if uint64(mod.Memory().Size())+memorySlack(limit) >= limit {
			return fmt.Errorf("%w: %w", ErrMemory, err)
		}
	}
	return fmt.Errorf("%w: %w", ErrTrap, err)
}

// memorySlack is how far below the limit a failed run's memory may be and
// still count as out of memory: a quarter of the limit, at least 4 MiB (Go's
// heap grows in 4 MiB arenas on wasm), and never more than the limit.
func memorySlack(limit uint64) uint64 {
	return min(limit, max(limit/4, 4<<20))
}
