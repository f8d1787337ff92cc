package relaylink

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"testing"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/internal/testvec"
)

func seedVectors(f *testing.F, pick func(v *relaylinkVectors) []string) {
	var v relaylinkVectors
	if err := testvec.Read(vectorsFile, &v); err != nil {
		f.Fatal(err)
	}
	for _, h := range pick(&v) {
		b, err := hex.DecodeString(h)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzParseMsg: parsing never panics, and a parsed message marshals to a
// body that parses to the same message, whose value bytes are the input's.
func FuzzParseMsg(f *testing.F) {
	seedVectors(f, func(v *relaylinkVectors) (s []string) {
		for _, m := range v.Messages {
			s = append(s, m.Encoded)
		}
		return s
	})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMsg(b)
		if err != nil {
			return
		}
		body := make([]byte, cell.BodyLen)
		if err := m.Marshal(body); err != nil {
			if len(m.Punch) > maxValue {
				return // a longer body than a cell's
			}
			t.Fatalf("%x parses to %+v, which does not marshal: %v", b, m, err)
		}
		n := 3 + (int(b[1])<<8 | int(b[2]))
		if !bytes.Equal(body[:n], b[:n]) {
			t.Fatalf("%x re-marshals to %x", b[:n], body[:n])
		}
		again, err := ParseMsg(body)
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("%x: %+v re-parses to %+v (%v)", b, m, again, err)
		}
	})
}

// FuzzParseHeader: parsing never panics, and a parsed header marshals to
// the same bytes (the encoding is canonical).
func FuzzParseHeader(f *testing.F) {
	seedVectors(f, func(v *relaylinkVectors) (s []string) {
		for _, h := range v.Headers {
			s = append(s, h.Encoded)
		}
		return s
	})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			return
		}
		out := h.Marshal()
		if !bytes.Equal(out, b) {
			t.Fatalf("%x parses but re-marshals to %x", b, out)
		}
		if again, err := ParseHeader(out); err != nil || again != h {
			t.Fatalf("%x: %+v re-parses to %+v (%v)", b, h, again, err)
		}
	})
}
