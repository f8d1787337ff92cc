package call

import (
	"bytes"
	"testing"
	"time"
)

// FuzzParse: a CALL body never panics Parse, and whatever parses encodes
// back to the same bytes (the encoding is canonical).
func FuzzParse(f *testing.F) {
	b, _ := sampleCall().Marshal()
	f.Add(b)
	lit, _ := (&Call{Module: [32]byte{1}, Function: "f", Budget: 1, Timeout: time.Second, Input: Literal([]byte("x"))}).Marshal()
	f.Add(lit)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err != nil {
			return
		}
		again, err := c.Marshal()
		if err != nil {
			t.Fatalf("parsed CALL does not encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", again, b)
		}
	})
}

// FuzzParseResult: a RESULT body never panics ParseResult, and whatever
// parses encodes back to the same bytes.
func FuzzParseResult(f *testing.F) {
	for _, r := range []*Result{{Status: OK, Used: 2, Output: []byte("7")}, {Status: Trap, Reason: "boom"}} {
		b, _ := r.Marshal()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseResult(b)
		if err != nil {
			return
		}
		if r.Status > maxStatus {
			return // an unknown status parses; this version does not write one
		}
		again, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs")
		}
	})
}

// FuzzReadFrame: any byte stream gives a frame within its type's bound or
// an error, never a panic or an allocation beyond the bound.
func FuzzReadFrame(f *testing.F) {
	var b bytes.Buffer
	WriteFrame(&b, FrameResult, []byte{0, 0, 1, 0, 0, 0, 0})
	f.Add(b.Bytes())
	f.Add([]byte{byte(FrameCall), 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		typ, body, err := ReadFrame(bytes.NewReader(in), 0, FrameCall, FrameNeed, FrameModule, FrameResult)
		if err != nil {
			return
		}
		if len(body) > MaxBody(typ) {
			t.Fatalf("%v body of %d bytes", typ, len(body))
		}
	})
}
