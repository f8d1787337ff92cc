package socks

import (
	"bytes"
	"net"
	"strconv"
	"testing"
)

func FuzzReadRequest(f *testing.F) {
	f.Add([]byte{5, 1, 0, 1, 127, 0, 0, 1, 0, 80})
	f.Add(append(append([]byte{5, 1, 0, 3, 15}, "example.invalid"...), 0, 80))
	f.Add([]byte{5, 1, 0, 4, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0xbb})
	f.Add(append(append([]byte{5, 2, 0, 3, 7}, "1.2.3.4"...), 0, 1))
	f.Add(append(append([]byte{5, 1, 0, 3, 14}, "::ffff:1.2.3.4"...), 0, 1))
	f.Add([]byte{5, 3, 0, 9})
	f.Add([]byte{4, 1, 0, 80, 1, 2, 3, 4, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := ReadRequest(bytes.NewReader(data))
		if err != nil {
			return
		}
		host, port, err := net.SplitHostPort(req.Target())
		if err != nil || host != req.Host || port != strconv.Itoa(int(req.Port)) {
			t.Fatalf("Target %q does not split back into %+v: %v", req.Target(), req, err)
		}
		again, err := ReadRequest(bytes.NewReader(encodeRequest(req)))
		if err != nil {
			t.Fatalf("re-encoded %+v does not parse: %v", req, err)
		}
		if again != req {
			t.Fatalf("round trip: %+v became %+v", req, again)
		}
	})
}

func FuzzReadGreeting(f *testing.F) {
	f.Add([]byte{5, 1, 0})
	f.Add([]byte{5, 2, 0, 2})
	f.Add([]byte{5, 0})
	f.Add([]byte{4, 1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		methods, err := ReadGreeting(bytes.NewReader(data))
		if err != nil {
			return
		}
		again, err := ReadGreeting(bytes.NewReader(encodeGreeting(methods)))
		if err != nil || !bytes.Equal(again, methods) {
			t.Fatalf("round trip: %x became %x, %v", methods, again, err)
		}
	})
}

func FuzzReadUserPass(f *testing.F) {
	f.Add(encodeUserPass("user", "pass"))
	f.Add(encodeUserPass("", ""))
	f.Add([]byte{1, 255})
	f.Add([]byte{5, 1, 'a', 1, 'b'})
	f.Fuzz(func(t *testing.T, data []byte) {
		user, pass, err := ReadUserPass(bytes.NewReader(data))
		if err != nil {
			return
		}
		u2, p2, err := ReadUserPass(bytes.NewReader(encodeUserPass(user, pass)))
		if err != nil || u2 != user || p2 != pass {
			t.Fatalf("round trip: (%q, %q) became (%q, %q), %v", user, pass, u2, p2, err)
		}
	})
}
