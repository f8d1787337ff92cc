// Package prebuilt embeds the example WebAssembly modules of the compute
// layer (wordcount, fanout, render, site; spec/compute-abi.md §5) as built
// modules, so that a darkmatter binary can publish them (darkmatter
// testnet does) without a Go toolchain.
//
// The files are gzip-compressed modules built by internal/wasmbuild
// (GOOS=wasip1 GOARCH=wasm -buildmode=c-shared -trimpath). After a change
// to an example module, or to the Go toolchain, regenerate them from the
// repository root with
//
//	go generate ./apps/compute/examples/prebuilt
//
// and commit the .wasm.gz files. The tests run every embedded module,
// so an embed that no longer behaves as its source does fails them.
package prebuilt

//go:generate go run ./gen
