//go:build wasip1

package main

import (
	"strconv"

	"github.com/darkmatter/darkmatter/apps/compute/examples/abi"
)

func main() {}

var sink [][]byte

//go:wasmexport loop
func loop() {
	for {
	}
}

//go:wasmexport membomb
func membomb() {
	for {
		sink = append(sink, make([]byte, 1<<20))
	}
}

// bigout writes as many bytes as its decimal input says.
//
//go:wasmexport bigout
func bigout() {
	n, _ := strconv.Atoi(string(abi.Input()))
	chunk := make([]byte, 64<<10)
	for n > 0 {
		k := min(n, len(chunk))
		if !abi.Output(chunk[:k]) {
			abi.Log("output refused")
			return
		}
		n -= k
	}
}

// subcalls: input = count (1 byte) ‖ hash (32) ‖ len(fn) (1) ‖ fn ‖ input.
// It starts count sub-calls, then writes each result (or "err:CODE")
// followed by "\n".
//
//go:wasmexport subcalls
func subcalls() {
	in := abi.Input()
	n := int(in[0])
	var hash [32]byte
	copy(hash[:], in[1:33])
	fl := int(in[33])
	fn, arg := string(in[34:34+fl]), in[34+fl:]
	var hs []abi.Handle
	var out []byte
	for range n {
		h, err := abi.Call(hash, fn, arg)
		if err != nil {
			out = append(out, "err:"+strconv.Itoa(int(err.(abi.Error)))+"\n"...)
			continue
		}
		hs = append(hs, h)
	}
	for _, h := range hs {
		res, err := h.Result()
		if err != nil {
			out = append(out, "err:"+strconv.Itoa(int(err.(abi.Error)))+"\n"...)
			continue
		}
		out = append(append(out, res...), '\n')
	}
	abi.Output(out)
}

// panics traps.
//
//go:wasmexport panics
func panics() { panic("boom") }

// hello logs and answers "hello".
//
//go:wasmexport hello
func hello() {
	abi.Log("hello from evil")
	abi.Output([]byte("hello"))
}

//go:wasmexport withparam
func withparam(int32) {}
