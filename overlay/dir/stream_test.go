package dir

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"
)

func frame(b []byte) []byte { return append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...) }

// A directory stream adds the descriptors that verify, ignores the others,
// and stops at broken framing.
func TestReadStream(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	var s []byte
	for i := range 3 {
		s = append(s, frame(desc(t, i, "net", now).Marshal())...)
	}
	s = append(s, frame([]byte("not a descriptor"))...)
	s = append(s, frame(desc(t, 9, "other-net", now).Marshal())...)
	d := New(Config{Network: "net"})
	n, err := d.ReadStream(bytes.NewReader(s))
	if err != nil || n != 3 || d.Len() != 3 {
		t.Fatalf("ReadStream = %d, %v; %d kept", n, err, d.Len())
	}
	for name, bad := range map[string][]byte{
		"too long":      binary.BigEndian.AppendUint16(nil, 4001),
		"truncated":     append(binary.BigEndian.AppendUint16(nil, 100), 1, 2, 3),
		"half a length": {0},
	} {
		if _, err := New(Config{}).ReadStream(bytes.NewReader(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// More entries than the directory holds.
	one := frame([]byte("x"))
	_, err = New(Config{MaxRelays: 2}).ReadStream(bytes.NewReader(bytes.Repeat(one, 3)))
	if !errors.Is(err, errDirStream) {
		t.Fatalf("3 entries into a 2-relay directory: %v", err)
	}
}

func FuzzReadStream(f *testing.F) {
	f.Add(frame([]byte("x")))
	f.Add([]byte{0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		d := New(Config{MaxRelays: 8})
		n, err := d.ReadStream(bytes.NewReader(b))
		if n > 8 || d.Len() > 8 || (err != nil && err != io.ErrUnexpectedEOF && !errors.Is(err, errDirStream)) {
			t.Fatalf("ReadStream = %d, %v", n, err)
		}
	})
}
