//go:build wasip1

package main

import (
	"encoding/hex"
	"strconv"

	"github.com/darkmatter/darkmatter/apps/compute/examples/abi"
	"github.com/darkmatter/darkmatter/apps/compute/examples/fanout/split"
)

func main() {}

// parts is the fan-out.
const parts = 4

//go:wasmexport count
func count() {
	in := abi.Input()
	if len(in) < 65 || in[64] != '\n' {
		panic("fanout: input is HEX(hash) \\n text")
	}
	var hash [32]byte
	if _, err := hex.Decode(hash[:], in[:64]); err != nil {
		panic("fanout: bad module hash")
	}
	var hs []abi.Handle
	for _, p := range split.Split(in[65:], parts) {
		h, err := abi.Call(hash, "count", p)
		if err != nil {
			panic("fanout: " + err.Error())
		}
		hs = append(hs, h)
	}
	total := 0
	for _, h := range hs {
		res, err := h.Result()
		if err != nil {
			panic("fanout: " + err.Error())
		}
		n, err := strconv.Atoi(string(res))
		if err != nil {
			panic("fanout: bad answer")
		}
		total += n
	}
	abi.Output(strconv.AppendInt(nil, int64(total), 10))
}
