package gateway

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// BenchmarkPages fetches a 4 KiB page from a loopback site b.N times
// directly and b.N times through the gateway (subdomain form, keep-alive
// both ways), and reports pages per second of each and their ratio.
func BenchmarkPages(b *testing.B) {
	page := strings.Repeat("x", 4096)
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, page) }))
	defer site.Close()
	addr := site.Listener.Addr().String()
	g, err := New(Config{Domain: testDomain, Rate: 1e9, Burst: 1 << 30, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	gw := httptest.NewServer(g)
	defer gw.Close()
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	defer client.CloseIdleConnections()
	fetch := func(url, host string) {
		req, _ := http.NewRequest("GET", url, nil)
		req.Host = host
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || n != int64(len(page)) {
			b.Fatalf("status %d, %d bytes", res.StatusCode, n)
		}
	}
	var direct, through time.Duration
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		fetch(site.URL+"/", "alice.dark")
		t1 := time.Now()
		fetch(gw.URL+"/", "alice.gw.test")
		through += time.Since(t1)
		direct += t1.Sub(t0)
	}
	b.ReportMetric(float64(b.N)/direct.Seconds(), "direct-pages/s")
	b.ReportMetric(float64(b.N)/through.Seconds(), "gateway-pages/s")
	b.ReportMetric(through.Seconds()/direct.Seconds(), "gateway/direct-time")
}
