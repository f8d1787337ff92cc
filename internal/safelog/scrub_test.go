package safelog

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
)

func TestScrub(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var d net.Dialer
	_, err = d.DialContext(context.Background(), "tcp", addr)
	if err == nil {
		t.Skip("something listens there")
	}
	wrapped := errors.Join(errors.New("outer"), err)
	for _, e := range []error{err, wrapped} {
		s := Scrub(e)
		if strings.Contains(s.Error(), "127.0.0.1") {
			t.Fatalf("address left in %q", s)
		}
		if !errors.Is(s, syscall.ECONNREFUSED) {
			t.Fatalf("%q lost its cause", s)
		}
		var op *net.OpError
		if !errors.As(s, &op) {
			t.Fatal("chain lost")
		}
	}
	if Scrub(nil) != nil {
		t.Fatal("nil")
	}
	plain := errors.New("no address here")
	if Scrub(plain) != plain {
		t.Fatal("plain error changed")
	}
	SetUnsafeLogging(true)
	defer SetUnsafeLogging(false)
	if Scrub(err) != err {
		t.Fatal("unsafe logging must keep the error")
	}
}
