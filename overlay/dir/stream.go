package dir

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
)

// ServeStream makes the directory a circuit.StreamHandler for BEGIN_DIR
// streams (spec/streams.md §5): it sends every fresh descriptor as
// | length (2) | descriptor | and then END DONE.
func (dir *Directory) ServeStream(ctx context.Context, req *circuit.StreamRequest) {
	st, err := req.Accept()
	if err != nil {
		return
	}
	defer st.Close()
	var buf []byte
	for _, d := range dir.List() {
		b := d.Marshal()
		buf = binary.BigEndian.AppendUint16(buf[:0], uint16(len(b)))
		buf = append(buf, b...)
		if _, err := st.Write(buf); err != nil {
			return
		}
	}
	if st.CloseWrite() != nil {
		return // not half-close: Close ends the stream
	}
	// Wait for the client's END; it sends nothing else.
	io.Copy(io.Discard, io.LimitReader(st, 1))
}

// errDirStream means a directory stream broke its framing.
var errDirStream = errors.New("dir: malformed directory stream")

// ReadStream is ReadStreamFrom with the node itself as the source: the
// subnet caps apply, the per-source limit does not.
func (dir *Directory) ReadStream(r io.Reader) (added int, err error) {
	return dir.ReadStreamFrom(r, "")
}

// ReadStreamFrom reads a directory stream (spec/streams.md §5) until EOF
// and offers every descriptor that verifies to AddFrom with source src; it
// returns how many were stored. It stops with an error at a length above
// descriptor.MaxSize or after the directory's MaxRelays entries.
func (dir *Directory) ReadStreamFrom(r io.Reader, src string) (added int, err error) {
	var hdr [2]byte
	buf := make([]byte, descriptor.MaxSize)
	for n := 0; ; n++ {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if err == io.EOF {
				return added, nil
			}
			return added, err
		}
		size := int(binary.BigEndian.Uint16(hdr[:]))
		if size > descriptor.MaxSize || n >= dir.maxRelays {
			return added, fmt.Errorf("%w: entry %d of %d bytes", errDirStream, n, size)
		}
		if _, err := io.ReadFull(r, buf[:size]); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return added, err
		}
		d, err := descriptor.Parse(buf[:size])
		if err != nil {
			continue // like DIR_DESC: a bad descriptor is ignored
		}
		if ok, _ := dir.AddFrom(d, src); ok {
			added++
		}
	}
}
