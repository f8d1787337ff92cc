package wasm

import (
	"context"
	"errors"
	"sync"
	"unicode/utf8"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// hostModule is the name of the host module of the ABI.
const hostModule = "darkmatter"

// maxFunctionName bounds the function name of a sub-call.
const maxFunctionName = 255

// errOutOfBounds traps a module that hands the host a range outside its memory.
var errOutOfBounds = errors.New("wasm: memory range out of bounds")

// runState is what the host functions of one run share. The module thread
// is the only caller of host functions, so only the results of sub-calls
// and data sources, written by their goroutines before done is closed,
// cross goroutines.
type runState struct {
	l        *Limits // this run's: the Runtime's, lowered by the Job
	input    []byte
	sub      SubCaller
	source   SourceFetcher
	subCtx   context.Context
	out      []byte
	fail     error      // a limit the module broke; the run fails with it
	calls    []*subCall // sub-calls and data sources, by handle
	subCalls int        // sub-calls started
	sources  int        // data sources started
	wg       sync.WaitGroup
	logs     int
}

// subCall is the result of a sub-call or a data source.
type subCall struct {
	done chan struct{}
	res  []byte
	code int32 // 0, codeFailed or codeTooLarge
}

// start runs f in the background and returns the handle of its result.
func (st *runState) start(f func(c *subCall)) int32 {
	c := &subCall{done: make(chan struct{})}
	st.calls = append(st.calls, c)
	st.wg.Go(func() {
		defer close(c.done)
		f(c)
	})
	return int32(len(st.calls) - 1)
}

type stateKey struct{}

func state(ctx context.Context) *runState {
	st, _ := ctx.Value(stateKey{}).(*runState)
	return st
}

// read returns a copy-free view of module memory; out of range traps.
func read(mod api.Module, ptr, n uint32) []byte {
	b, ok := mod.Memory().Read(ptr, n)
	if !ok {
		panic(errOutOfBounds)
	}
	return b
}

func write(mod api.Module, ptr uint32, b []byte) {
	if !mod.Memory().Write(ptr, b) {
		panic(errOutOfBounds)
	}
}

func i32(v int32) uint64 { return api.EncodeI32(v) }

// instantiateHost builds the "darkmatter" host module (spec/compute-abi.md).
func instantiateHost(ctx context.Context, rt wazero.Runtime) error {
	i := api.ValueTypeI32
	b := rt.NewHostModuleBuilder(hostModule)
	fn := func(name string, f api.GoModuleFunc, params, results []api.ValueType) {
		b.NewFunctionBuilder().WithGoModuleFunction(f, params, results).Export(name)
	}
	fn("input_len", hostInputLen, nil, []api.ValueType{i})
	fn("input_read", hostInputRead, []api.ValueType{i, i}, []api.ValueType{i})
	fn("output_write", hostOutputWrite, []api.ValueType{i, i}, []api.ValueType{i})
	fn("call", hostCall, []api.ValueType{i, i, i, i, i}, []api.ValueType{i})
	fn("source", hostSource, []api.ValueType{i}, []api.ValueType{i})
	fn("result_len", hostResultLen, []api.ValueType{i}, []api.ValueType{i})
	fn("result_read", hostResultRead, []api.ValueType{i, i, i}, []api.ValueType{i})
	fn("log", hostLog, []api.ValueType{i, i}, nil)
	_, err := b.Instantiate(ctx)
	return err
}

func hostInputLen(ctx context.Context, _ api.Module, stack []uint64) {
	stack[0] = i32(int32(len(state(ctx).input)))
}

func hostInputRead(ctx context.Context, mod api.Module, stack []uint64) {
	ptr, n := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	in := state(ctx).input
	k := min(int(n), len(in))
	write(mod, ptr, in[:k])
	stack[0] = i32(int32(k))
}

func hostOutputWrite(ctx context.Context, mod api.Module, stack []uint64) {
	st := state(ctx)
	ptr, n := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	b := read(mod, ptr, n)
	if len(st.out)+len(b) > st.l.MaxOutput {
		if st.fail == nil {
			st.fail = ErrOutputTooLarge
		}
		stack[0] = i32(-1)
		return
	}
	st.out = append(st.out, b...)
	stack[0] = 0
}

func hostCall(ctx context.Context, mod api.Module, stack []uint64) {
	st := state(ctx)
	hashPtr, fnPtr, fnLen := api.DecodeU32(stack[0]), api.DecodeU32(stack[1]), api.DecodeU32(stack[2])
	inPtr, inLen := api.DecodeU32(stack[3]), api.DecodeU32(stack[4])
	var hash [32]byte
	copy(hash[:], read(mod, hashPtr, 32))
	fnb := read(mod, fnPtr, fnLen)
	in := read(mod, inPtr, inLen)
	switch {
	case st.sub == nil:
		stack[0] = i32(codeRefused)
		return
	case st.subCalls >= st.l.MaxSubCalls:
		if st.fail == nil {
			st.fail = ErrSubCallLimit
		}
		stack[0] = i32(codeLimit)
		return
	case len(fnb) == 0 || len(fnb) > maxFunctionName || !utf8.Valid(fnb) || len(in) > st.l.MaxInput:
		stack[0] = i32(codeBadArg)
		return
	}
	st.subCalls++
	fn, input := string(fnb), append([]byte(nil), in...)
	stack[0] = i32(st.start(func(c *subCall) {
		res, err := st.sub(st.subCtx, hash, fn, input)
		switch {
		case err != nil:
			c.code = codeFailed
			st.logf("sub-call %q failed", fn)
		case len(res) > st.l.MaxInput:
			c.code = codeTooLarge
		default:
			c.res = res
		}
	}))
}

// wait returns the sub-call or data source of handle h once it is done, or
// a code.
func (st *runState) wait(ctx context.Context, h int32) (*subCall, int32) {
	if h < 0 || int(h) >= len(st.calls) {
		return nil, codeBadArg
	}
	c := st.calls[h]
	select {
	case <-c.done:
	case <-ctx.Done():
		return nil, codeFailed
	}
	if c.code != 0 {
		return nil, c.code
	}
	return c, 0
}

func hostResultLen(ctx context.Context, _ api.Module, stack []uint64) {
	c, code := state(ctx).wait(ctx, api.DecodeI32(stack[0]))
	if c == nil {
		stack[0] = i32(code)
		return
	}
	stack[0] = i32(int32(len(c.res)))
}

func hostResultRead(ctx context.Context, mod api.Module, stack []uint64) {
	ptr, n := api.DecodeU32(stack[1]), api.DecodeU32(stack[2])
	c, code := state(ctx).wait(ctx, api.DecodeI32(stack[0]))
	if c == nil {
		stack[0] = i32(code)
		return
	}
	k := min(int(n), len(c.res))
	write(mod, ptr, c.res[:k])
	stack[0] = i32(int32(k))
}

func hostLog(ctx context.Context, mod api.Module, stack []uint64) {
	st := state(ctx)
	ptr, n := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	b := read(mod, ptr, n)
	if st.logs >= st.l.MaxLogs {
		return
	}
	st.logs++
	st.logf("module: %q", b[:min(len(b), st.l.MaxLogBytes)])
}

func (st *runState) logf(format string, args ...any) {
	if st.l.Logf != nil {
		st.l.Logf(format, args...)
	}
}
