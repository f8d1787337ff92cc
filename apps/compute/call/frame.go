package call

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/darkmatter/darkmatter/apps/compute/manifest"
)

// FrameType is the type of a frame on a BEGIN_COMPUTE stream.
type FrameType uint8

// Frame types (spec/compute.md §4.1).
const (
	FrameCall   FrameType = 1 // requester → executor: a CALL
	FrameNeed   FrameType = 2 // executor → requester: send the module bytes (empty)
	FrameModule FrameType = 3 // requester → executor: the module bytes
	FrameResult FrameType = 4 // executor → requester: the RESULT; the last frame
)

func (t FrameType) String() string {
	switch t {
	case FrameCall:
		return "CALL"
	case FrameNeed:
		return "NEED"
	case FrameModule:
		return "MODULE"
	case FrameResult:
		return "RESULT"
	}
	return fmt.Sprintf("frame %d", uint8(t))
}

// MaxBody is the largest body of a frame type; 0 for an unknown type.
func MaxBody(t FrameType) int {
	switch t {
	case FrameCall:
		return MaxCallSize
	case FrameNeed:
		return 0
	case FrameModule:
		return manifest.MaxModuleSize
	case FrameResult:
		return MaxResultSize
	}
	return 0
}

const frameHeader = 1 + 4

// WriteFrame writes one frame in a single Write.
func WriteFrame(w io.Writer, t FrameType, body []byte) error {
	if len(body) > MaxBody(t) {
		return malformed("%v body of %d bytes, at most %d", t, len(body), MaxBody(t))
	}
	b := make([]byte, frameHeader+len(body))
	b[0] = byte(t)
	binary.BigEndian.PutUint32(b[1:], uint32(len(body)))
	copy(b[frameHeader:], body)
	_, err := w.Write(b)
	return err
}

// ReadFrame reads one frame whose type is one of want. It refuses another
// type, or a length over the type's bound or over limit (when limit > 0),
// before reading the body.
func ReadFrame(r io.Reader, limit int, want ...FrameType) (FrameType, []byte, error) {
	var h [frameHeader]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	t, n := FrameType(h[0]), binary.BigEndian.Uint32(h[1:])
	ok := false
	for _, w := range want {
		ok = ok || t == w
	}
	if !ok {
		return t, nil, malformed("unexpected %v", t)
	}
	max := MaxBody(t)
	if limit > 0 {
		max = min(max, limit)
	}
	if uint64(n) > uint64(max) {
		return t, nil, malformed("%v body of %d bytes, at most %d", t, n, max)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return t, nil, err
	}
	return t, body, nil
}
