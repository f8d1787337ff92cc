package overlay

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/onion"
)

// firstByte makes a new rendezvous with pub through c, opens a stream to
// port 80 and reads one echoed byte.
func firstByte(b *testing.B, c *onion.Client, pub keys.ServicePublicKey) {
	b.Helper()
	ctx := ctxT(b)
	cc, err := c.Connect(ctx, pub)
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	st, err := cc.OpenStream(ctx, pub.Address()+":80")
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if _, err := io.WriteString(st, "E\nx"); err != nil {
		b.Fatal(err)
	}
	if _, err := io.ReadFull(st, make([]byte, 1)); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkHiddenServiceFirstFetch publishes a service under a new key
// and reaches it from a client that knows nothing of it yet: publish-ms is
// the time until the descriptor is stored (ListenService returns),
// first-byte-ms until the client, having fetched the descriptor,
// introduced itself and met the service, reads a first byte. A new
// network serves every few services: DHT nodes accept 30 STOREs at once
// from one source (the relay proxying the service node's requests), and
// each service stores two descriptors.
func BenchmarkHiddenServiceFirstFetch(b *testing.B) {
	const perNet = 10
	for _, kind := range kinds {
		b.Run(kind, func(b *testing.B) {
			var hn *hiddenNet
			closeNet := func() {
				if hn != nil {
					hn.svc.Close()
					hn.close()
				}
			}
			defer closeNet()
			var publish, first time.Duration
			for i := 0; b.Loop(); i++ {
				if i%perNet == 0 {
					b.StopTimer()
					closeNet()
					hn = newHiddenNet(b, kind, 6)
					b.StartTimer()
				}
				key, err := keys.GenerateService(nil)
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				s, err := hn.svc.ListenService(ctxT(b), ServiceConfig{Key: key, Ports: []uint16{80}})
				if err != nil {
					b.Fatal(err)
				}
				publish += time.Since(start)
				_, wait := serveListener(s)
				c := onion.NewClient(hsEnv{hn.client}, onion.ClientConfig{})
				firstByte(b, c, key.Public())
				first += time.Since(start)
				c.Close()
				s.Close()
				wait()
			}
			ms := func(d time.Duration) float64 { return float64(d) / float64(b.N) / 1e6 }
			b.ReportMetric(ms(publish), "publish-ms")
			b.ReportMetric(ms(first), "first-byte-ms")
		})
	}
}

// BenchmarkHiddenServiceNewRendezvous measures a fresh connection's time to
// first byte with the descriptor cached: a rendezvous circuit, an
// introduction circuit, INTRODUCE1, the service's circuit to the
// rendezvous relay, the end-to-end handshake, a stream and one byte.
func BenchmarkHiddenServiceNewRendezvous(b *testing.B) {
	for _, kind := range kinds {
		b.Run(kind, func(b *testing.B) {
			hn := newHiddenNet(b, kind, 6)
			defer hn.close()
			key, _ := keys.GenerateService(nil)
			s, err := hn.svc.ListenService(ctxT(b), ServiceConfig{Key: key, Ports: []uint16{80}})
			if err != nil {
				b.Fatal(err)
			}
			_, wait := serveListener(s)
			defer func() { s.Close(); wait() }()
			c := onion.NewClient(hsEnv{hn.client}, onion.ClientConfig{})
			defer c.Close()
			firstByte(b, c, key.Public()) // fetches the descriptor
			b.ReportAllocs()
			for b.Loop() {
				firstByte(b, c, key.Public())
			}
			if st := c.Stats(); st.Fetched != 1 {
				b.Fatalf("client %+v: the descriptor was fetched again", st)
			}
			b.ReportMetric(float64(b.Elapsed())/float64(b.N)/1e6, "ttfb-ms")
		})
	}
}

// BenchmarkHiddenServiceBulk moves data from a hidden service to a client
// over the 6 hops of a joined circuit, and in the same run over a 3-hop
// exit circuit and a direct connection, and reports MB/s of each.
func BenchmarkHiddenServiceBulk(b *testing.B) {
	for _, kind := range kinds {
		b.Run(kind, func(b *testing.B) {
			hn := newHiddenNet(b, kind, 6)
			defer hn.close()
			ln, err := hn.svc.Listen(ctxT(b), "tcp", ":80")
			if err != nil {
				b.Fatal(err)
			}
			_, wait := serveListener(ln)
			defer func() { ln.Close(); wait() }()
			const size = 16 << 20
			direct := func() (net.Conn, error) { return hn.transport().Dial(ctxT(b), hn.target.addr) }
			exit := func() (net.Conn, error) { return hn.client.DialStream(ctxT(b), hn.target.addr, "") }
			hidden := func() (net.Conn, error) { return hn.client.Dial(ctxT(b), "tcp", ln.Addr().String()) }
			run := func(dial func() (net.Conn, error)) time.Duration { return timedDownload(b, dial, size) }
			var d, e, h time.Duration
			for b.Loop() {
				d += run(direct)
				e += run(exit)
				h += run(hidden)
			}
			mbs := func(t time.Duration) float64 { return float64(size) * float64(b.N) / t.Seconds() / 1e6 }
			b.ReportMetric(mbs(d), "direct-MB/s")
			b.ReportMetric(mbs(e), "exit3-MB/s")
			b.ReportMetric(mbs(h), "hidden6-MB/s")
			b.ReportMetric(100*mbs(h)/mbs(e), "%-of-exit3")
		})
	}
}
