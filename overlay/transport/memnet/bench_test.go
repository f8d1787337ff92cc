package memnet_test

import (
	"fmt"
	"io"
	"testing"

	"github.com/darkmatter/darkmatter/overlay/transport/memnet"
)

// BenchmarkConnThroughput moves data one way through a conn with the
// default buffer, for several write sizes; the reader reads 32 KiB at a
// time, as io.Copy does.
func BenchmarkConnThroughput(b *testing.B) {
	for _, size := range []int{1 << 10, 16 << 10, 32 << 10, 256 << 10} {
		b.Run(fmt.Sprintf("write=%dKiB", size>>10), func(b *testing.B) {
			var n memnet.Network
			c, s := pair(b, &n)
			done := make(chan struct{})
			go func() {
				defer close(done)
				io.CopyBuffer(io.Discard, struct{ io.Reader }{s}, make([]byte, 32<<10))
			}()
			buf := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			c.Close()
			<-done
		})
	}
}

// BenchmarkDial measures Dial plus Accept plus Close of both ends.
func BenchmarkDial(b *testing.B) {
	var n memnet.Network
	a := n.Host("10.0.0.1")
	ln, err := n.Host("10.0.0.2").Listen(":80")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	b.ReportAllocs()
	for b.Loop() {
		c, err := a.Dial(b.Context(), "10.0.0.2:80")
		if err != nil {
			b.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
		s.Close()
	}
}
