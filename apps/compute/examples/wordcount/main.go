//go:build wasip1

package main

import (
	"strconv"

	"github.com/darkmatter/darkmatter/apps/compute/examples/abi"
	"github.com/darkmatter/darkmatter/apps/compute/examples/wordcount/words"
)

func main() {}

//go:wasmexport count
func count() {
	abi.Output(strconv.AppendInt(nil, int64(words.Count(abi.Input())), 10))
}
