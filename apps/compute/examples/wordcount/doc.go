//go:build wasip1

// Command wordcount is the pure-function example module of darkmatter's
// compute layer: its function "count" reads the input and writes the number
// of words in it as decimal ASCII. Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o wordcount.wasm .
package main
