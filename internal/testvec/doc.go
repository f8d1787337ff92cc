// Package testvec loads, checks and rewrites the JSON test vectors in
// spec/vectors, for the _test.go files that share them with spec/*.md.
//
// A vector test follows one convention:
//
//   - The vectors are read with [Load] (or [LoadOrGenerate], when the file's
//     inputs come from a generator in the test) from spec/vectors/<name>,
//     found from any package directory by walking up to the module's go.mod
//     ([Path]).
//   - Every output the implementation computes goes through [Check] or
//     [CheckHex]: normally it must equal the field in the file; with -update
//     it is written into the field instead.
//   - At the end, with -update, the test writes the vectors back with [Save]:
//     indented JSON with a trailing newline, so an unchanged implementation
//     rewrites the files byte for byte.
//
// The -update flag is registered here, once, for every test binary that
// imports the package ([Update] reports it); a package's tests must not
// define their own. Run, for example,
//
//	go test ./crypto/keys -run TestVectors -update
//
// and review the diff under spec/vectors: a change there is a change to the
// specification.
//
// [Hex] decodes a hex field or fails the test; [Seq] makes the counting byte
// strings generators use as inputs; [Read] is [Load] for callers without a
// test to fail, such as fuzz seed corpora.
//
// What it does not do:
//   - It knows nothing about any file's layout: each test declares the JSON
//     types and decides which fields are inputs and which are checked
//     outputs. Inputs are never rewritten unless the test regenerates them.
//   - It does not decide whether a failing test may still rewrite its file;
//     the test calls [Save] under its own condition (typically
//     Update() && !t.Failed()).
//   - It does not write anywhere but spec/vectors, create directories, or
//     change the mode of an existing file.
//   - It is for tests only; nothing outside _test.go files imports it.
//
// No spec/ section is normative for this package; the vector files are
// described by the spec/*.md documents that cite them.
package testvec
