//go:build wasip1

package abi

import (
	"strconv"
	"unsafe"
)

//go:wasmimport darkmatter input_len
func inputLen() int32

//go:wasmimport darkmatter input_read
func inputRead(ptr unsafe.Pointer, n int32) int32

//go:wasmimport darkmatter output_write
func outputWrite(ptr unsafe.Pointer, n int32) int32

//go:wasmimport darkmatter call
func call(hash unsafe.Pointer, fn unsafe.Pointer, fnLen int32, in unsafe.Pointer, inLen int32) int32

//go:wasmimport darkmatter source
func source(hash unsafe.Pointer) int32

//go:wasmimport darkmatter result_len
func resultLen(h int32) int32

//go:wasmimport darkmatter result_read
func resultRead(h int32, ptr unsafe.Pointer, n int32) int32

//go:wasmimport darkmatter log
func logMsg(ptr unsafe.Pointer, n int32)

// ptr returns a pointer to b's first byte, or nil for an empty slice.
func ptr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

// Input returns the call's input.
func Input() []byte {
	n := inputLen()
	b := make([]byte, n)
	m := inputRead(ptr(b), n)
	return b[:m]
}

// Output appends b to the call's output. It reports false when the output
// would exceed the executor's limit; the call then fails.
func Output(b []byte) bool {
	return outputWrite(ptr(b), int32(len(b))) == 0
}

// Error is a negative code returned by the host (spec/compute-abi.md §Codes).
type Error int32

func (e Error) Error() string { return "darkmatter host error " + strconv.Itoa(int(e)) }

// Host error codes.
const (
	ErrRefused  Error = -1 // the executor refuses sub-calls (data sources)
	ErrLimit    Error = -2 // the sub-call (data source) limit is reached; the run fails
	ErrFailed   Error = -3 // the sub-call (data source) failed
	ErrTooLarge Error = -4 // the result is larger than allowed
	ErrBadArg   Error = -5 // bad function name or unknown handle
)

// Handle names a sub-call started by [Call] or a data source started by
// [Source].
type Handle int32

// Call starts a sub-call of function fn of the module whose SHA-256 is hash,
// with input in. It does not wait: several calls run in parallel, and
// [Handle.Result] waits for one.
func Call(hash [32]byte, fn string, in []byte) (Handle, error) {
	f := []byte(fn)
	h := call(unsafe.Pointer(&hash[0]), ptr(f), int32(len(f)), ptr(in), int32(len(in)))
	if h < 0 {
		return 0, Error(h)
	}
	return Handle(h), nil
}

// Source starts fetching the data source (content-addressed blob) whose
// SHA-256 is hash. It does not wait: several fetches (and sub-calls) run in
// parallel, and [Handle.Result] waits for one and returns the blob, which
// the executor has checked against hash.
func Source(hash [32]byte) (Handle, error) {
	h := source(unsafe.Pointer(&hash[0]))
	if h < 0 {
		return 0, Error(h)
	}
	return Handle(h), nil
}

// Result waits for the sub-call or data source and returns its result.
func (h Handle) Result() ([]byte, error) {
	n := resultLen(int32(h))
	if n < 0 {
		return nil, Error(n)
	}
	b := make([]byte, n)
	m := resultRead(int32(h), ptr(b), n)
	if m < 0 {
		return nil, Error(m)
	}
	return b[:m], nil
}

// Log sends a message to the executor's log (truncated by the executor).
func Log(s string) {
	b := []byte(s)
	logMsg(ptr(b), int32(len(b)))
}
