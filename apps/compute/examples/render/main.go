//go:build wasip1

package main

import (
	"encoding/hex"

	"github.com/darkmatter/darkmatter/apps/compute/examples/abi"
	"github.com/darkmatter/darkmatter/apps/compute/examples/render/page"
)

func main() {}

//go:wasmexport page
func render() {
	emit(abi.Input())
}

// blob renders the data source whose SHA-256 is its input, in hex.
//
//go:wasmexport blob
func blob() {
	in := abi.Input()
	var hash [32]byte
	if len(in) != 2*len(hash) {
		panic("render: input is HEX(blob hash)")
	}
	if _, err := hex.Decode(hash[:], in); err != nil {
		panic("render: bad blob hash")
	}
	h, err := abi.Source(hash)
	if err != nil {
		panic("render: " + err.Error())
	}
	data, err := h.Result()
	if err != nil {
		panic("render: " + err.Error())
	}
	emit(data)
}

// emit writes data rendered as HTML; bad data fails the call.
func emit(data []byte) {
	out, err := page.Render(data)
	if err != nil {
		panic(err)
	}
	abi.Output(out)
}
