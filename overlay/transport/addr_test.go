package transport_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/darkmatter/darkmatter/overlay/transport"
	"github.com/darkmatter/darkmatter/overlay/transport/memnet"
)

func TestParseAddr(t *testing.T) {
	tests := []struct {
		in   string
		want transport.Addr
		bad  bool
	}{
		{in: "1.2.3.4:80", want: transport.Addr{Scheme: "tcp", HostPort: "1.2.3.4:80"}},
		{in: "tcp://1.2.3.4:80", want: transport.Addr{Scheme: "tcp", HostPort: "1.2.3.4:80"}},
		{in: "mem://10.0.0.1:7000", want: transport.Addr{Scheme: "mem", HostPort: "10.0.0.1:7000"}},
		{in: "quic2://[2001:db8::1]:443", want: transport.Addr{Scheme: "quic2", HostPort: "[2001:db8::1]:443"}},
		{in: "relay.example.org:9001", want: transport.Addr{Scheme: "tcp", HostPort: "relay.example.org:9001"}},
		{in: ":0", want: transport.Addr{Scheme: "tcp", HostPort: ":0"}},
		{in: "[::1]:9001", want: transport.Addr{Scheme: "tcp", HostPort: "[::1]:9001"}},
		{in: "", bad: true},
		{in: "1.2.3.4", bad: true},
		{in: "tcp://1.2.3.4", bad: true},
		{in: "1.2.3.4:http", bad: true},
		{in: "1.2.3.4:65536", bad: true},
		{in: "TCP://1.2.3.4:80", bad: true},
		{in: "1tcp://1.2.3.4:80", bad: true},
		{in: "://1.2.3.4:80", bad: true},
		{in: "averyveryverylongscheme://1.2.3.4:80", bad: true},
		{in: "tcp://tcp://1.2.3.4:80", bad: true},
	}
	for _, tt := range tests {
		got, err := transport.ParseAddr(tt.in)
		if tt.bad {
			if err == nil || !strings.HasPrefix(err.Error(), "transport: ") {
				t.Errorf("ParseAddr(%q) = %v, %v; want a transport: error", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseAddr(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			continue
		}
		if back, err := transport.ParseAddr(got.String()); err != nil || back != got {
			t.Errorf("ParseAddr(%q.String()) = %v, %v", tt.in, back, err)
		}
	}
}

// A Registry runs several transports at once and picks one by scheme.
func TestRegistry(t *testing.T) {
	n := &memnet.Network{}
	reg := transport.Registry{transport.SchemeTCP: &transport.TCP{}, "mem": n.Host("10.0.0.1")}
	memLn, err := reg.Listen("mem://10.0.0.1:7000")
	if err != nil {
		t.Fatal(err)
	}
	defer memLn.Close()
	tcpLn, err := reg.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcpLn.Close()
	if memLn.Addr().Network() != "memnet" || tcpLn.Addr().Network() != "tcp" {
		t.Fatalf("listeners on %v and %v", memLn.Addr().Network(), tcpLn.Addr().Network())
	}
	for _, addr := range []string{"mem://10.0.0.1:7000", "tcp://" + tcpLn.Addr().String(), tcpLn.Addr().String()} {
		if !reg.Supports(addr) {
			t.Errorf("Supports(%q) = false", addr)
		}
		c, err := reg.Dial(context.Background(), addr)
		if err != nil {
			t.Fatalf("Dial(%q): %v", addr, err)
		}
		ln := tcpLn
		if strings.HasPrefix(addr, "mem") {
			ln = memLn
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("hi"))
		c.Close()
		if b, _ := io.ReadAll(s); string(b) != "hi" {
			t.Errorf("Dial(%q) reached the wrong listener: read %q", addr, b)
		}
		s.Close()
	}
	if _, err := reg.Dial(context.Background(), "quic://10.0.0.1:7000"); !errors.Is(err, transport.ErrUnknownScheme) {
		t.Errorf("dial of an unknown scheme: %v", err)
	}
	if _, err := reg.Listen("quic://10.0.0.1:7000"); !errors.Is(err, transport.ErrUnknownScheme) {
		t.Errorf("listen on an unknown scheme: %v", err)
	}
	if reg.Supports("quic://10.0.0.1:7000") || reg.Supports("no port") {
		t.Error("Supports an address it cannot dial")
	}
}
