package overlay

import (
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// BenchmarkCircuitDownload moves data from a target through a 3-hop circuit
// to the client over the in-memory transport and over loopback TCP, and
// reports MB/s next to a direct connection measured in the same run.
func BenchmarkCircuitDownload(b *testing.B) {
	for _, kind := range kinds {
		b.Run(kind, func(b *testing.B) {
			h := newHarness(b, kind, 4)
			defer h.close()
			const size = 16 << 20
			direct := func() (net.Conn, error) { return h.transport().Dial(ctxT(b), h.target.addr) }
			viaCircuit := func() (net.Conn, error) { return h.client.DialStream(ctxT(b), h.target.addr, "") }
			run := func(dial func() (net.Conn, error)) time.Duration { return timedDownload(b, dial, size) }
			var d, c time.Duration
			b.SetBytes(size)
			for b.Loop() {
				d += run(direct)
				c += run(viaCircuit)
			}
			mbs := func(t time.Duration) float64 { return float64(size) * float64(b.N) / t.Seconds() / 1e6 }
			b.ReportMetric(mbs(d), "direct-MB/s")
			b.ReportMetric(mbs(c), "circuit-MB/s")
			b.ReportMetric(100*mbs(c)/mbs(d), "%-of-direct")
		})
	}
}

// BenchmarkCircuitBuild builds 3-hop circuits over memnet (links already
// open): CPU and scheduling cost of three hybrid handshakes and two EXTENDs.
func BenchmarkCircuitBuild(b *testing.B) {
	h := newHarness(b, "mem", 4)
	defer h.close()
	b.ReportAllocs()
	for b.Loop() {
		cc, err := h.client.Manager().Build(ctxT(b))
		if err != nil {
			b.Fatal(err)
		}
		cc.Close()
	}
}

// timedDownload dials, asks the target for size bytes and returns how long
// they took to arrive.
func timedDownload(b *testing.B, dial func() (net.Conn, error), size int64) time.Duration {
	conn, err := dial()
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	fmt.Fprintf(conn, "D %d\n", size)
	if n, err := io.CopyBuffer(io.Discard, io.LimitReader(conn, size), make([]byte, 256<<10)); err != nil || n != size {
		b.Fatalf("%d bytes, %v", n, err)
	}
	return time.Since(start)
}

// BenchmarkCircuitLinks moves data through a 3-hop circuit whose links run
// over loopback TCP and over loopback QUIC (quictr), in the same run, and
// reports MB/s and the time to the first byte of a new stream on a built
// circuit for each.
func BenchmarkCircuitLinks(b *testing.B) {
	for _, scheme := range []string{"tcp", "quic"} {
		b.Run(scheme, func(b *testing.B) {
			h := newHarnessWith(b, "tcp", 4, func(c *Config) {
				if len(c.Listen) > 0 && scheme == "quic" {
					c.Listen = []string{"quic://127.0.0.1:0"}
				}
			})
			defer h.close()
			benchCircuit(b, func() (net.Conn, error) { return h.client.DialStream(ctxT(b), h.target.addr, "") })
		})
	}
}

// benchCircuit downloads 16 MiB per iteration from streams dial opens,
// then times a new stream's first byte, and reports MB/s and ttfb-µs.
func benchCircuit(b *testing.B, dial func() (net.Conn, error)) {
	const size = 16 << 20
	var total, first time.Duration
	b.SetBytes(size)
	for b.Loop() {
		total += timedDownload(b, dial, size)
		start := time.Now()
		c, err := dial()
		if err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(c, "D 1\n")
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			b.Fatal(err)
		}
		first += time.Since(start)
		c.Close()
	}
	b.ReportMetric(float64(size)*float64(b.N)/total.Seconds()/1e6, "MB/s")
	b.ReportMetric(float64(first.Microseconds())/float64(b.N), "ttfb-µs")
}
