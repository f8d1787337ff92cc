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

// sources: input = count (1 byte) ‖ hash (32). It starts count data
// sources of the blob hash, then writes each result (or "err:CODE")
// followed by "\n".
//
//go:wasmexport sources
func sources() {
	in := abi.Input()
	var hash [32]byte
	copy(hash[:], in[1:33])
	var hs []abi.Handle
	var out []byte
	for range int(in[0]) {
		h, err := abi.Source(hash)
		if err != nil {
			out = appendErr(out, err)
			continue
		}
		hs = append(hs, h)
	}
	out = appendResults(out, hs)
	abi.Output(out)
}

// mixed: input = module hash (32) ‖ blob hash (32). It starts a sub-call
// of function "f" of the module with input "a", a data source of the blob,
// and a sub-call with input "b"; then writes the three handles, "\n", and
// each result (or "err:CODE") followed by "\n".
//
//go:wasmexport mixed
func mixed() {
	in := abi.Input()
	var mod, blob [32]byte
	copy(mod[:], in[:32])
	copy(blob[:], in[32:64])
	var hs []abi.Handle
	var out []byte
	for i, start := range []func() (abi.Handle, error){
		func() (abi.Handle, error) { return abi.Call(mod, "f", []byte("a")) },
		func() (abi.Handle, error) { return abi.Source(blob) },
		func() (abi.Handle, error) { return abi.Call(mod, "f", []byte("b")) },
	} {
		h, err := start()
		if err != nil {
			panic("mixed: start " + strconv.Itoa(i) + ": " + err.Error())
		}
		hs = append(hs, h)
		out = strconv.AppendInt(out, int64(h), 10)
	}
	out = appendResults(append(out, '\n'), hs)
	abi.Output(out)
}

func appendErr(out []byte, err error) []byte {
	return append(out, "err:"+strconv.Itoa(int(err.(abi.Error)))+"\n"...)
}

// appendResults waits for every handle and appends its result (or
// "err:CODE") and "\n".
func appendResults(out []byte, hs []abi.Handle) []byte {
	for _, h := range hs {
		res, err := h.Result()
		if err != nil {
			out = appendErr(out, err)
			continue
		}
		out = append(append(out, res...), '\n')
	}
	return out
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
