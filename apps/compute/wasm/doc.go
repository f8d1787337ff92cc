// Package wasm is the WebAssembly runtime of darkmatter's executors. It runs
// an exported function of a module, addressed by the SHA-256 of its bytes,
// on an input, and returns the module's output.
//
// Modules run under github.com/tetratelabs/wazero (pure Go, no cgo). Each
// [Runtime.RunJob] (or [Runtime.Run]) verifies the code's hash before
// anything else, takes the compiled module from a bounded cache (or
// compiles it), and runs the function in a fresh instance bounded by
// [Limits]: memory pages, wall time (the instance is closed when its context
// ends), output and input size, sub-calls and data sources per run. A [Job]
// may lower the wall time, output size and sub-calls of one run. The host
// ABI a module sees (host module "darkmatter", plus a WASI
// wasi_snapshot_preview1 with no files, environment or network) is specified
// byte for byte in spec/compute-abi.md.
//
// What it does not do: fetch modules, check manifests or signatures, send
// sub-calls anywhere or fetch data sources. A [SubCaller] and a
// [SourceFetcher] given by the executor do the last two; the bytes a
// SourceFetcher returns are checked against their hash here.
package wasm
