// Package wasmbuild builds the project's example WebAssembly modules for
// tests: a Go package of this module compiled with GOOS=wasip1
// GOARCH=wasm -buildmode=c-shared (spec/compute-abi.md §5), once per test
// binary. It is for tests and tools only; the node never compiles code.
package wasmbuild
