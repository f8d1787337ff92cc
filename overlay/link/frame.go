package link

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// frameReader reads frames (| length (2) | message |) from a conn through
// a buffer. The message it returns is a slice of that buffer, valid until
// the next call, so the reader decrypts it in place. While traffic flows the
// buffer is a large one borrowed from bigBufs; whenever it runs empty it is
// given back, so an idle link holds only its small buffer.
type frameReader struct {
	conn  net.Conn
	buf   []byte
	small []byte  // the idle buffer, owned
	big   *[]byte // borrowed from bigBufs while in use, else nil
	r, w  int     // unread bytes are buf[r:w]

	// For the idle timer: waitSince is 1 + time.Since(epoch) in
	// nanoseconds when the current Read began, or 0 while no Read is
	// waiting (the reader is busy with what it read).
	epoch     time.Time
	waitSince atomic.Int64
}

// bigBufs holds the large read buffers of links that are receiving.
var bigBufs = sync.Pool{New: func() any {
	b := make([]byte, readBufLen)
	return &b
}}

func newFrameReader(conn net.Conn) *frameReader {
	small := make([]byte, idleReadBufLen)
	return &frameReader{conn: conn, buf: small, small: small, epoch: time.Now()}
}

// buffered reports whether bytes read from the connection wait unread.
func (f *frameReader) buffered() bool { return f.r != f.w }

// release gives the large buffer back when nothing is buffered. Messages
// returned earlier must no longer be in use.
func (f *frameReader) release() {
	if f.big != nil && f.r == f.w {
		bigBufs.Put(f.big)
		f.big, f.buf, f.r, f.w = nil, f.small, 0, 0
	}
}

// fill reads until at least n bytes are buffered. n must be at most
// readBufLen.
func (f *frameReader) fill(n int) error {
	if f.w-f.r >= n {
		return nil
	}
	if f.big == nil && n > len(f.small) {
		// A transport message (every one is larger than the small
		// buffer): move to a large buffer.
		f.big = bigBufs.Get().(*[]byte)
		f.w = copy(*f.big, f.buf[f.r:f.w])
		f.r = 0
		f.buf = *f.big
	}
	if len(f.buf)-f.r < n {
		f.w = copy(f.buf, f.buf[f.r:f.w])
		f.r = 0
	}
	for f.w-f.r < n {
		f.waitSince.Store(1 + int64(time.Since(f.epoch)))
		m, err := f.conn.Read(f.buf[f.w:])
		f.waitSince.Store(0)
		f.w += m
		if err != nil {
			if f.w-f.r >= n {
				return nil
			}
			if errors.Is(err, io.EOF) && f.w > f.r {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// next returns the next frame's message; a reject frame gives an empty
// message. It does not check the length beyond what the buffer holds; the
// caller checks it against what the protocol allows at that point, via max.
func (f *frameReader) next(max int) ([]byte, error) {
	f.release()
	if err := f.fill(FrameHeaderLen); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(f.buf[f.r:]))
	if n > max {
		return nil, protoErr("frame of %d bytes, at most %d allowed here", n, max)
	}
	f.r += FrameHeaderLen
	if err := f.fill(n); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	msg := f.buf[f.r : f.r+n]
	f.r += n
	return msg, nil
}

// readByte returns one byte, the reason of a reject frame.
func (f *frameReader) readByte() (byte, error) {
	if err := f.fill(1); err != nil {
		return 0, err
	}
	b := f.buf[f.r]
	f.r++
	return b, nil
}

// readFull returns the next n bytes (the preamble).
func (f *frameReader) readFull(n int) ([]byte, error) {
	if err := f.fill(n); err != nil {
		return nil, err
	}
	b := f.buf[f.r : f.r+n]
	f.r += n
	return b, nil
}

// idleFor reports how long the current Read has been waiting for data: 0
// when the reader is not in Read, so a slow Handler does not count as an
// idle peer.
func (f *frameReader) idleFor() time.Duration {
	ws := f.waitSince.Load()
	if ws == 0 {
		return 0
	}
	return time.Since(f.epoch) - time.Duration(ws-1)
}

// appendFrame appends a frame header for a message of n bytes.
func appendFrameHeader(b []byte, n int) []byte {
	return binary.BigEndian.AppendUint16(b, uint16(n))
}
