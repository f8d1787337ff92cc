package wasm

import "errors"

// Errors returned by [Runtime.RunJob] and [Runtime.Run]; test them with errors.Is.
var (
	ErrHashMismatch   = errors.New("wasm: module bytes do not match their hash")
	ErrTimeout        = errors.New("wasm: time limit exceeded")
	ErrMemory         = errors.New("wasm: memory limit exceeded")
	ErrOutputTooLarge = errors.New("wasm: output too large")
	ErrInputTooLarge  = errors.New("wasm: input too large")
	ErrNoFunction     = errors.New("wasm: no such function")
	ErrSubCallLimit   = errors.New("wasm: sub-call limit exceeded")
	ErrSourceLimit    = errors.New("wasm: data source limit exceeded")
	ErrTrap           = errors.New("wasm: module trapped")
	ErrInvalidModule  = errors.New("wasm: invalid module")
	ErrClosed         = errors.New("wasm: runtime closed")
	ErrBusy           = errors.New("wasm: too many runs at once")
)

// Host ABI error codes (spec/compute-abi.md §Codes).
const (
	codeRefused  int32 = -1 // no SubCaller (SourceFetcher): refused
	codeLimit    int32 = -2 // MaxSubCalls (MaxSources) reached: the run fails
	codeFailed   int32 = -3 // the sub-call (fetch) failed, or wrong bytes
	codeTooLarge int32 = -4 // the result exceeds MaxInput (MaxSourceSize)
	codeBadArg   int32 = -5 // bad function name or unknown handle
)
