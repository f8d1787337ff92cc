// Package call encodes the messages of a delegated call on a BEGIN_COMPUTE
// stream (spec/compute.md §4): the CALL a requester sends to an executor
// (module hash, function, tree limits, an optional signed manifest, and an
// input that is a literal, a blob of the DHT, or the result of another
// call), the executor's NEED for the module bytes, the requester's MODULE
// answer, and the RESULT with a status, a reason and the output.
//
// Every message travels in a frame | type (1) | length (4) | body |, and
// ReadFrame refuses a frame longer than the bound of its type before it
// allocates it. Decoders check the layout only and return a clear error,
// never panic; what a call may do is decided by the executor's policy.
//
// What it does not do: carry the frames (a circuit stream does), verify
// manifests or code (package manifest), or run anything (package wasm).
package call
