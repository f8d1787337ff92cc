package circuit

import (
	"math/rand/v2"
	"slices"
	"sort"
)

// Bandwidth weighting (spec/circuits.md §1.1). A relay's weight is the
// bandwidth it advertises, capped by what was measured through it when
// that is known, raised to a floor so that a relay advertising nothing is
// still chosen now and then, and capped at capFactor times the median
// weight so that one relay lying about its bandwidth cannot attract most
// paths.
const (
	// minWeight is the weight floor, in bytes per second.
	minWeight = 1 << 10
	// capFactor bounds any relay's weight by this many medians.
	capFactor = 10
)

// weightOf returns r's weight before the median cap: the advertised
// bandwidth, capped by the measured one (r.Measured, or measured if it is
// not zero), and at least minWeight.
func weightOf(r *RelayInfo, measured uint32) uint64 {
	w := r.Bandwidth
	if measured == 0 {
		measured = r.Measured
	}
	if measured != 0 {
		w = min(w, measured)
	}
	return max(uint64(w), minWeight)
}

// weights returns a cumulative weight table over relays: cum[i] is the sum
// of the weights of relays[0..i]. measured gives the bandwidths measured
// by this node (it may be nil).
func weights(relays []*RelayInfo, measured func(*RelayInfo) uint32) []uint64 {
	raw := make([]uint64, len(relays))
	for i, r := range relays {
		var m uint32
		if measured != nil {
			m = measured(r)
		}
		raw[i] = weightOf(r, m)
	}
	c := weightCap(raw)
	var sum uint64
	for i, w := range raw {
		sum += min(w, c)
		raw[i] = sum
	}
	return raw
}

// weightCap returns capFactor times the median of ws (ws is not changed).
func weightCap(ws []uint64) uint64 {
	if len(ws) == 0 {
		return 0
	}
	s := slices.Clone(ws)
	slices.Sort(s)
	return s[len(s)/2] * capFactor
}

// pickWeighted returns an index into the table cum (from weights), chosen
// with probability proportional to its weight; -1 if the table is empty.
// r may be nil for the shared generator.
func pickWeighted(cum []uint64, r *rand.Rand) int {
	if len(cum) == 0 || cum[len(cum)-1] == 0 {
		return -1
	}
	total := cum[len(cum)-1]
	var x uint64
	if r != nil {
		x = r.Uint64N(total)
	} else {
		x = rand.Uint64N(total)
	}
	// The first i with cum[i] > x.
	return sort.Search(len(cum), func(i int) bool { return cum[i] > x })
}
