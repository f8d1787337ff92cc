package linkrpc

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/darkmatter/darkmatter/circuit/cell"
)

// Specification constants (spec/dht.md §5). A fragment is the body of one
// cell:
//
//	id (4) | flags (1) | length (2) | data (length)
//
// id is chosen by the requester and echoed by the response. Flags: bit 0
// response, bit 1 more fragments follow, bit 2 refused (a response with
// no data: the peer would not handle the request; ask later or
// elsewhere). Other bits are ignored. The fragments of one message are
// sent in order, each but the last with the more bit.
const (
	headerLen = 4 + 1 + 2
	// MaxFragment is the data one fragment carries.
	MaxFragment = cell.BodyLen - headerLen

	flagResponse = 1 << 0
	flagMore     = 1 << 1
	flagRefused  = 1 << 2
)

// fragment is one decoded fragment; data aliases the cell.
type fragment struct {
	id    uint32
	flags byte
	data  []byte
}

var errFragment = errors.New("linkrpc: malformed fragment")

// parseFragment decodes a cell body.
func parseFragment(body []byte) (fragment, error) {
	if len(body) < headerLen {
		return fragment{}, errFragment
	}
	n := int(binary.BigEndian.Uint16(body[5:7]))
	if n > len(body)-headerLen {
		return fragment{}, fmt.Errorf("%w: length %d", errFragment, n)
	}
	return fragment{
		id:    binary.BigEndian.Uint32(body[:4]),
		flags: body[4],
		data:  body[headerLen : headerLen+n],
	}, nil
}

// putFragment writes a fragment into a cell body.
func putFragment(body []byte, f fragment) {
	binary.BigEndian.PutUint32(body[:4], f.id)
	body[4] = f.flags
	binary.BigEndian.PutUint16(body[5:7], uint16(len(f.data)))
	copy(body[headerLen:], f.data)
}

// fragments returns how many cells a message of n bytes takes.
func fragments(n int) int {
	if n == 0 {
		return 1
	}
	return (n + MaxFragment - 1) / MaxFragment
}
