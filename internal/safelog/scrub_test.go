package safelog

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
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

// A lookup error names neither the host nor the resolver, on its own, in
// a dial error, or wrapped; its cause stays when it is a fixed text of the
// net package and is otherwise named from its flags.
func TestScrubDNSError(t *testing.T) {
	const name, server = "secret.example", "10.9.8.7:53"
	notFound := &net.DNSError{Err: "no such host", Name: name, Server: server, IsNotFound: true}
	// The resolver copies the text of the error it got, which may hold the
	// resolver's address.
	unreachable := &net.DNSError{Err: "dial udp " + server + ": connect: network is unreachable", Name: name, Server: server, IsTemporary: true}
	timeout := &net.DNSError{Err: "read udp 10.0.0.2:4242->" + server + ": i/o timeout", Name: name, Server: server, IsTimeout: true}
	for _, tt := range []struct {
		err  error
		want string
	}{
		{notFound, "lookup: no such host"},
		{unreachable, "lookup: temporary failure"},
		{timeout, "lookup: timeout"},
		{&net.DNSError{Err: "invalid address " + "10.1.2.3", Name: name}, "lookup: failed"},
		{&net.OpError{Op: "dial", Net: "tcp", Err: notFound}, "dial: lookup: no such host"},
		{fmt.Errorf("linkmgr: dial %s: %w", name, unreachable), "lookup: temporary failure"},
		{errors.Join(errors.New("first"), timeout), "lookup: timeout"},
		{&net.AddrError{Err: "missing port in address", Addr: name}, "address: missing port in address"},
		{&net.ParseError{Type: "IP address", Text: "10.9.8"}, "invalid IP address"},
		{&url.Error{Op: "Get", URL: "http://" + name + "/", Err: &net.OpError{Op: "dial", Net: "tcp", Err: notFound}}, "Get: dial: lookup: no such host"},
	} {
		s := Scrub(tt.err)
		if s.Error() != tt.want {
			t.Errorf("Scrub(%q) = %q, want %q", tt.err, s, tt.want)
		}
		for _, secret := range []string{name, "10.9.8", "10.1.2.3"} {
			if strings.Contains(s.Error(), secret) {
				t.Errorf("Scrub(%q) = %q keeps %s", tt.err, s, secret)
			}
		}
		if !errors.Is(s, tt.err) {
			t.Errorf("Scrub(%q) lost the chain", tt.err)
		}
	}
	var dnsErr *net.DNSError
	if !errors.As(Scrub(fmt.Errorf("w: %w", notFound)), &dnsErr) || !dnsErr.IsNotFound {
		t.Error("errors.As no longer finds the DNSError")
	}
}

// A real lookup through the Go resolver whose transport fails: the
// DNSError it makes holds the name and the resolver's address, and
// Scrub removes both.
func TestScrubLookup(t *testing.T) {
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: network, Addr: &net.UDPAddr{IP: net.IPv4(10, 9, 8, 7), Port: 53}, Err: syscall.ENETUNREACH}
	}}
	_, err := r.LookupHost(context.Background(), "secret.example")
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) {
		t.Fatalf("lookup error %v is not a DNSError", err)
	}
	if !strings.Contains(err.Error(), "secret.example") {
		t.Fatalf("lookup error %q does not name the host; the test would prove nothing", err)
	}
	s := Scrub(err)
	if strings.Contains(s.Error(), "secret") || strings.Contains(s.Error(), "10.9.8.7") {
		t.Fatalf("Scrub(%q) = %q", err, s)
	}
	if !strings.HasPrefix(s.Error(), "lookup: ") {
		t.Fatalf("Scrub(%q) = %q, want a lookup error", err, s)
	}
}
