// Package abi is the guest side of darkmatter's compute host ABI
// (spec/compute-abi.md) for modules written in Go and built with
// GOOS=wasip1 GOARCH=wasm -buildmode=c-shared. It wraps the imports of the
// "darkmatter" host module: reading the input, writing the output,
// starting sub-calls and data sources and reading their results, and
// logging.
//
// It only builds for wasip1; the executor side is apps/compute/wasm.
package abi
