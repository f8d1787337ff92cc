package link

import (
	"encoding/binary"
	"fmt"

	"github.com/darkmatter/darkmatter/circuit/protover"
)

// hello is what a HELLO payload carries (spec/links.md §5.1):
//
//	| type (1) | length (2) | value (length) | ...
//
// type 1 = protocols (protover wire form, required), type 2 = the sender's
// relay descriptor (optional). Each type appears at most once; unknown
// types are skipped, so a newer peer can add fields.
type hello struct {
	protocols  protover.Set
	descriptor []byte // nil when the field is absent
}

// appendHello appends the HELLO fields of h: protocols, then the
// descriptor if there is one. The caller checks the total against
// MaxHelloLen.
func appendHello(b []byte, h hello) []byte {
	b = append(b, HelloProtocols)
	b = binary.BigEndian.AppendUint16(b, uint16(h.protocols.Len()))
	b = h.protocols.Append(b)
	if len(h.descriptor) > 0 {
		b = append(b, HelloDescriptor)
		b = binary.BigEndian.AppendUint16(b, uint16(len(h.descriptor)))
		b = append(b, h.descriptor...)
	}
	return b
}

// parseHello decodes a HELLO payload. It copies what it keeps, so b may be
// reused. Errors are ErrProtocol errors.
func parseHello(b []byte) (hello, error) {
	var h hello
	var seen [256]bool
	for len(b) > 0 {
		if len(b) < HelloFieldHeaderLen {
			return hello{}, protoErr("HELLO: truncated field header")
		}
		typ, n := b[0], int(binary.BigEndian.Uint16(b[1:]))
		b = b[HelloFieldHeaderLen:]
		if n > len(b) {
			return hello{}, protoErr("HELLO: field %d of %d bytes, only %d left", typ, n, len(b))
		}
		v := b[:n]
		b = b[n:]
		if seen[typ] {
			return hello{}, protoErr("HELLO: field %d twice", typ)
		}
		seen[typ] = true
		switch typ {
		case HelloProtocols:
			s, used, err := protover.Parse(v)
			if err != nil {
				return hello{}, protoErr("HELLO protocols: %w", err)
			}
			if used != n {
				return hello{}, protoErr("HELLO protocols: %d bytes after the set", n-used)
			}
			h.protocols = s
		case HelloDescriptor:
			h.descriptor = append([]byte{}, v...)
		}
	}
	if !seen[HelloProtocols] {
		return hello{}, protoErr("HELLO without a protocols field")
	}
	return h, nil
}

// linkVersion returns the Link version a link runs: the highest both
// sides list, or an ErrVersion error if there is none.
func linkVersion(ours, peer protover.Set) (int, error) {
	v := ours.Highest(peer, protover.Link)
	if v == 0 {
		return 0, fmt.Errorf("%w: no Link version in common (we speak %v, the peer %v)",
			ErrVersion, ours.String(), peer.String())
	}
	return v, nil
}
