// Package manifest encodes and checks the two codecs of delegated service
// calls that live in the DHT (spec/compute.md §1, §2): the signed module
// manifest, which names a WebAssembly module by the SHA-256 of its bytes and
// carries its author, exported functions, permissions and requested limits;
// and the content-addressed blob format, which splits modules and data
// sources into verified chunks.
//
// Every decoder checks the layout only and returns a clear error on bad
// input, never panics; signatures and content are checked by Verify,
// CheckCode and Assemble. dhttypes.go holds the DHT type rules the node
// registers for blocks, modules and blob manifests.
package manifest
