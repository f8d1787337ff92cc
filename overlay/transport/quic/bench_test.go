package quictr

import (
	"context"
	"io"
	"net"
	"testing"

	"github.com/darkmatter/darkmatter/overlay/transport"
)

// benchEnvs are the transports compared: TCP loopback and QUIC loopback.
func benchEnvs() []struct {
	name string
	tr   transport.Transport
} {
	return []struct {
		name string
		tr   transport.Transport
	}{
		{"tcp", &transport.TCP{}},
		{"quic", &Transport{}},
	}
}

// BenchmarkThroughput streams b.N chunks of 64 KiB over one link.
func BenchmarkThroughput(b *testing.B) {
	for _, e := range benchEnvs() {
		b.Run(e.name, func(b *testing.B) {
			ln, err := e.tr.Listen("127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			c, err := e.tr.Dial(context.Background(), ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			s, err := ln.Accept()
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			done := make(chan int64)
			go func() { n, _ := io.Copy(io.Discard, s); done <- n }()
			buf := make([]byte, 64<<10)
			b.SetBytes(int64(len(buf)))
			b.ResetTimer()
			for range b.N {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			c.(interface{ CloseWrite() error }).CloseWrite()
			if n := <-done; n != int64(b.N*len(buf)) {
				b.Fatalf("received %d bytes, sent %d", n, b.N*len(buf))
			}
		})
	}
}

// BenchmarkDial sets up one link per iteration: dial, accept, one byte
// each way, close both ends.
func BenchmarkDial(b *testing.B) {
	for _, e := range benchEnvs() {
		b.Run(e.name, func(b *testing.B) {
			ln, err := e.tr.Listen("127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			var one [1]byte
			for range b.N {
				c, err := e.tr.Dial(context.Background(), ln.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				s, err := ln.Accept()
				if err != nil {
					b.Fatal(err)
				}
				if err := exchange(c, s, one[:]); err != nil {
					b.Fatal(err)
				}
				s.Close()
				c.Close()
			}
		})
	}
}

func exchange(c, s net.Conn, b []byte) error {
	if _, err := c.Write(b); err != nil {
		return err
	}
	if _, err := io.ReadFull(s, b); err != nil {
		return err
	}
	if _, err := s.Write(b); err != nil {
		return err
	}
	_, err := io.ReadFull(c, b)
	return err
}
