//go:build wasip1

package main

import (
	"github.com/darkmatter/darkmatter/apps/compute/examples/abi"
	"github.com/darkmatter/darkmatter/apps/compute/examples/site/sitepage"
)

func main() {}

//go:wasmexport page
func page() {
	out, err := sitepage.Respond(abi.Input(), fetch)
	if err != nil {
		panic(err)
	}
	abi.Output(out)
}

// fetch reads a data source.
func fetch(hash [32]byte) ([]byte, error) {
	h, err := abi.Source(hash)
	if err != nil {
		return nil, err
	}
	return h.Result()
}
