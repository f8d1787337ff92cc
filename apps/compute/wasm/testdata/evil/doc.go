//go:build wasip1

// Command evil is a test-only module that misbehaves on purpose, for the
// limits tests of apps/compute/wasm: it loops forever, grows its memory
// without end, writes more output than allowed, and makes sub-calls and
// reads data sources on request. It is built by those tests (GOOS=wasip1)
// and never shipped; it does nothing useful.
package main
