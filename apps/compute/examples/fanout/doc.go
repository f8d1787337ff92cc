//go:build wasip1

// Command fanout is the fan-out example module of darkmatter's compute
// layer. Its function "count" takes an input of the form
//
//	HEX(module hash) "\n" text
//
// splits the text at white space into up to 4 parts of similar size,
// sub-calls function "count" of the given module (the wordcount example) on
// every part in parallel, and writes the sum of their answers as decimal.
// A failed sub-call fails the call.
package main
