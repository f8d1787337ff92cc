// Package wasm is the WebAssembly runtime of darkmatter's executors. It runs
// an exported function of a module, addressed by the SHA-256 of its bytes,
// on an input, and returns the module's output.
//
// Modules run under github.com/tetratelabs/wazero (pure Go, no cgo). Each
// [Runtime.Run] verifies the code's hash before anything else, takes the
// compiled module from a bounded cache (or compiles it), and runs the
// function in a fresh instance bounded by [Limits]: memory pages, wall time
// (the instance is closed when its context ends), output and input size, and
// sub-calls per run. The host ABI a module sees (host module "darkmatter",
// plus a WASI wasi_snapshot_preview1 with no files, environment or network)
// is specified byte for byte in spec/compute-abi.md.
//
// What it does not do: fetch modules, check manifests or signatures, or send
// sub-calls anywhere. A [SubCaller] given by the executor does the latter.
package wasm
