package socks

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
)

// encodeRequest is the client side of ReadRequest, used to check round trips.
func encodeRequest(r Request) []byte {
	b := []byte{Version, r.Cmd, 0}
	if a, err := netip.ParseAddr(r.Host); err == nil && a.Zone() == "" {
		if a.Is4() {
			v := a.As4()
			b = append(append(b, AtypIPv4), v[:]...)
		} else {
			v := a.As16()
			b = append(append(b, AtypIPv6), v[:]...)
		}
	} else {
		b = append(b, AtypDomain, byte(len(r.Host)))
		b = append(b, r.Host...)
	}
	return binary.BigEndian.AppendUint16(b, r.Port)
}

func encodeGreeting(methods []byte) []byte {
	return append([]byte{Version, byte(len(methods))}, methods...)
}

func encodeUserPass(user, pass string) []byte {
	b := append([]byte{UserPassVersion, byte(len(user))}, user...)
	b = append(b, byte(len(pass)))
	return append(b, pass...)
}

func TestReadRequest(t *testing.T) {
	for _, tt := range []struct {
		name   string
		in     []byte
		want   Request
		target string
		err    error
	}{
		{"IPv4", []byte{5, 1, 0, 1, 10, 0, 0, 1, 0x1f, 0x90}, Request{1, "10.0.0.1", 8080}, "10.0.0.1:8080", nil},
		{"IPv6", append(append([]byte{5, 1, 0, 4}, netip.MustParseAddr("2001:db8::42").AsSlice()...), 0, 80),
			Request{1, "2001:db8::42", 80}, "[2001:db8::42]:80", nil},
		{"IPv4-mapped IPv6", append(append([]byte{5, 1, 0, 4}, netip.MustParseAddr("::ffff:1.2.3.4").AsSlice()...), 0, 80),
			Request{1, "::ffff:1.2.3.4", 80}, "[::ffff:1.2.3.4]:80", nil},
		{"domain", append(append([]byte{5, 1, 0, 3, 15}, "Example.invalid"...), 1, 0xbb),
			Request{1, "Example.invalid", 443}, "Example.invalid:443", nil},
		{"BIND parsed", []byte{5, 2, 0, 1, 0, 0, 0, 0, 0, 0}, Request{2, "0.0.0.0", 0}, "0.0.0.0:0", nil},
		{"RSV ignored", []byte{5, 1, 7, 1, 1, 2, 3, 4, 0, 1}, Request{1, "1.2.3.4", 1}, "1.2.3.4:1", nil},
		{"SOCKS4", []byte{4, 1, 0, 80, 1, 2, 3, 4, 0}, Request{}, "", ErrVersion},
		{"bad atyp", []byte{5, 1, 0, 2, 1, 2, 3, 4, 0, 80}, Request{}, "", ErrAddressType},
		{"empty domain", []byte{5, 1, 0, 3, 0, 0, 80}, Request{}, "", ErrBadDomain},
		{"domain with NUL", append(append([]byte{5, 1, 0, 3, 3}, "a\x00b"...), 0, 80), Request{}, "", ErrBadDomain},
		{"domain with slash", append(append([]byte{5, 1, 0, 3, 3}, "a/b"...), 0, 80), Request{}, "", ErrBadDomain},
		{"domain with brackets", append(append([]byte{5, 1, 0, 3, 5}, "[::1]"...), 0, 80), Request{}, "", ErrBadDomain},
		{"short", []byte{5, 1, 0, 1, 1, 2}, Request{}, "", io.ErrUnexpectedEOF},
		{"empty", nil, Request{}, "", io.EOF},
		{"no port", []byte{5, 1, 0, 1, 1, 2, 3, 4}, Request{}, "", io.EOF},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadRequest(bytes.NewReader(tt.in))
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err %v, want %v", err, tt.err)
				}
				if !strings.HasPrefix(err.Error(), "socks: ") {
					t.Fatalf("error %q lacks the package prefix", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want || got.Target() != tt.target {
				t.Fatalf("got %+v (%s), want %+v (%s)", got, got.Target(), tt.want, tt.target)
			}
		})
	}
}

func TestReadGreetingAndUserPass(t *testing.T) {
	m, err := ReadGreeting(bytes.NewReader([]byte{5, 2, 0, 2, 0xAA}))
	if err != nil || !bytes.Equal(m, []byte{0, 2}) {
		t.Fatalf("ReadGreeting = %v, %v", m, err)
	}
	if _, err := ReadGreeting(bytes.NewReader([]byte{4, 1, 0})); !errors.Is(err, ErrVersion) {
		t.Fatalf("SOCKS4 greeting: %v", err)
	}
	if _, err := ReadGreeting(bytes.NewReader([]byte{5, 3, 0})); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short greeting: %v", err)
	}
	u, p, err := ReadUserPass(bytes.NewReader(encodeUserPass("alice", "s3cret")))
	if err != nil || u != "alice" || p != "s3cret" {
		t.Fatalf("ReadUserPass = %q, %q, %v", u, p, err)
	}
	if _, _, err := ReadUserPass(bytes.NewReader([]byte{5, 1, 'a', 1, 'b'})); !errors.Is(err, ErrVersion) {
		t.Fatalf("bad version: %v", err)
	}
	if _, _, err := ReadUserPass(bytes.NewReader([]byte{1, 1, 'a', 2, 'b'})); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short password: %v", err)
	}
}

func TestWriteReply(t *testing.T) {
	var b bytes.Buffer
	if err := WriteReply(&b, ReplyHostUnreachable); err != nil {
		t.Fatal(err)
	}
	if want := []byte{5, 4, 0, 1, 0, 0, 0, 0, 0, 0}; !bytes.Equal(b.Bytes(), want) {
		t.Fatalf("reply % x, want % x", b.Bytes(), want)
	}
}

func TestIsolationKey(t *testing.T) {
	if a, b := IsolationKey("a", "bc"), IsolationKey("ab", "c"); a == b {
		t.Fatalf("keys collide: %q", a)
	}
	if k := IsolationKey("", ""); k == "" {
		t.Fatal("empty credentials give the no-auth key")
	}
}
