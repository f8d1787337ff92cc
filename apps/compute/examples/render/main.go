//go:build wasip1

package main

import (
	"github.com/darkmatter/darkmatter/apps/compute/examples/abi"
	"github.com/darkmatter/darkmatter/apps/compute/examples/render/page"
)

func main() {}

//go:wasmexport page
func render() {
	out, err := page.Render(abi.Input())
	if err != nil {
		panic(err)
	}
	abi.Output(out)
}
