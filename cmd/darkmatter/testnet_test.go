package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/internal/safelog"
	"github.com/darkmatter/darkmatter/overlay"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
)

// The origin server's fixed page and its large body.
const (
	originPage = "hello from the darkmatter cmd test origin\n"
	bigSize    = 32 << 20
)

// ioTimeout bounds every read and write of a test connection (the race
// detector makes 32 MiB through three hops slow, but never this slow).
const ioTimeout = 2 * time.Minute

// bigBody is a deterministic 32 MiB pattern and its SHA-256.
var bigBody = sync.OnceValues(func() ([]byte, [32]byte) {
	b := make([]byte, bigSize)
	r := rand.NewChaCha8([32]byte{'d', 'a', 'r', 'k'})
	_, _ = r.Read(b)
	return b, sha256.Sum256(b)
})

// testLogf returns a Logf that writes to t.Logf until the test ends and is
// silent afterwards (a late line must not panic the test binary).
func testLogf(t *testing.T, prefix string) safelog.Logf {
	var mu sync.Mutex
	done := false
	t.Cleanup(func() {
		mu.Lock()
		done = true
		mu.Unlock()
	})
	return func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			t.Logf(prefix+format, args...)
		}
	}
}

// startOrigin starts the local HTTP server on 127.0.0.1: "/" is originPage,
// "/big" is bigBody ("/big?n=N" its first N bytes).
func startOrigin(t *testing.T) (addr string, port int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, originPage)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		b, _ := bigBody()
		if s := r.URL.Query().Get("n"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 || n > len(b) {
				http.Error(w, "bad n", http.StatusBadRequest)
				return
			}
			b = b[:n]
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b)
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return ln.Addr().String(), ln.Addr().(*net.TCPAddr).Port
}

// env is an in-process testnet with its front ends and an origin server.
type env struct {
	tn         *testnet
	fe         *frontends
	origin     string // 127.0.0.1:port
	originPort int
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{}
	e.origin, e.originPort = startOrigin(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	sctx, scancel := context.WithTimeout(ctx, time.Minute)
	defer scancel()
	start := time.Now()
	tn, err := startTestnet(sctx, testnetOptions{Network: "t", Relays: 5, Info: testLogf(t, "testnet: "), Debug: nil})
	if err != nil {
		t.Fatalf("startTestnet: %v", err)
	}
	t.Cleanup(tn.Close)
	t.Logf("testnet up in %v", time.Since(start).Round(time.Millisecond))
	e.tn = tn
	fe, err := startFrontends(tn.Client, "127.0.0.1:0", "127.0.0.1:0", nil)
	if err != nil {
		t.Fatalf("startFrontends: %v", err)
	}
	t.Cleanup(func() { fe.Close() })
	e.fe = fe
	return e
}

// SOCKS5 address types.
const (
	atypIPv4   = 0x01
	atypDomain = 0x03
)

// socksDial opens a SOCKS5 CONNECT to host:port through the proxy at proxy.
// With user != "" it authenticates with username/password (RFC 1929),
// otherwise it offers only "no authentication". atyp chooses how host (an
// IPv4 literal) is sent.
func socksDial(proxy string, atyp byte, host string, port int, user, pass string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", proxy, 10*time.Second)
	if err != nil {
		return nil, err
	}
	if err := socksHandshake(c, atyp, host, port, user, pass); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.SetDeadline(time.Now().Add(ioTimeout)); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func socksHandshake(c net.Conn, atyp byte, host string, port int, user, pass string) error {
	if err := c.SetDeadline(time.Now().Add(time.Minute)); err != nil {
		return err
	}
	method := byte(0x00)
	if user != "" {
		method = 0x02
	}
	if _, err := c.Write([]byte{0x05, 0x01, method}); err != nil {
		return err
	}
	var rep [2]byte
	if _, err := io.ReadFull(c, rep[:]); err != nil {
		return fmt.Errorf("greeting reply: %w", err)
	}
	if rep != [2]byte{0x05, method} {
		return fmt.Errorf("greeting reply % x, want 05 %02x", rep, method)
	}
	if user != "" {
		msg := []byte{0x01, byte(len(user))}
		msg = append(msg, user...)
		msg = append(msg, byte(len(pass)))
		msg = append(msg, pass...)
		if _, err := c.Write(msg); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, rep[:]); err != nil {
			return fmt.Errorf("auth reply: %w", err)
		}
		if rep != [2]byte{0x01, 0x00} {
			return fmt.Errorf("auth reply % x, want 01 00", rep)
		}
	}
	req := []byte{0x05, 0x01, 0x00, atyp}
	switch atyp {
	case atypIPv4:
		ip := net.ParseIP(host).To4()
		if ip == nil {
			return fmt.Errorf("%q is not an IPv4 literal", host)
		}
		req = append(req, ip...)
	case atypDomain:
		req = append(req, byte(len(host)))
		req = append(req, host...)
	default:
		return fmt.Errorf("address type %d not supported by this client", atyp)
	}
	req = append(req, byte(port>>8), byte(port))
	if _, err := c.Write(req); err != nil {
		return err
	}
	// VER REP RSV ATYP, then BND.ADDR and BND.PORT.
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return fmt.Errorf("connect reply: %w", err)
	}
	if hdr[0] != 0x05 || hdr[1] != 0x00 {
		return fmt.Errorf("connect reply % x: not succeeded", hdr)
	}
	var skip int
	switch hdr[3] {
	case atypIPv4:
		skip = 4 + 2
	case 0x04:
		skip = 16 + 2
	case atypDomain:
		var l [1]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return err
		}
		skip = int(l[0]) + 2
	default:
		return fmt.Errorf("connect reply with address type %d", hdr[3])
	}
	if _, err := io.CopyN(io.Discard, c, int64(skip)); err != nil {
		return fmt.Errorf("connect reply address: %w", err)
	}
	return nil
}

// httpGet sends a GET for path over c (already connected to the origin)
// and returns the response, whose body the caller reads.
func httpGet(c net.Conn, br *bufio.Reader, host, path string, keepAlive bool) (*http.Response, error) {
	conn := "close"
	if keepAlive {
		conn = "keep-alive"
	}
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: %s\r\n\r\n", path, host, conn); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return resp, nil
}

// getPage fetches "/" over c and checks it.
func getPage(t *testing.T, c net.Conn, host string) {
	t.Helper()
	resp, err := httpGet(c, bufio.NewReader(c), host, "/", false)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read page: %v", err)
	}
	if string(b) != originPage {
		t.Fatalf("page = %q, want %q", b, originPage)
	}
}

// checkBig reads the whole body and checks its length and SHA-256 against
// the first n bytes of bigBody.
func checkBig(t *testing.T, body io.Reader, n int) {
	t.Helper()
	h := sha256.New()
	start := time.Now()
	got, err := io.Copy(h, body)
	if err != nil {
		t.Fatalf("after %d bytes: %v", got, err)
	}
	b, sum := bigBody()
	if n != len(b) {
		sum = sha256.Sum256(b[:n])
	}
	if got != int64(n) {
		t.Fatalf("got %d bytes, want %d", got, n)
	}
	if [32]byte(h.Sum(nil)) != sum {
		t.Fatalf("SHA-256 of the %d bytes received does not match", n)
	}
	el := time.Since(start)
	t.Logf("%d bytes in %v (%.1f MiB/s)", n, el.Round(time.Millisecond), float64(n)/(1<<20)/el.Seconds())
}

func TestTestnetSOCKS5(t *testing.T) {
	e := newEnv(t)
	t.Run("ipv4-page", func(t *testing.T) {
		c, err := socksDial(e.fe.socksAddr, atypIPv4, "127.0.0.1", e.originPort, "", "")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		getPage(t, c, e.origin)
	})
	t.Run("domain-literal-page", func(t *testing.T) {
		c, err := socksDial(e.fe.socksAddr, atypDomain, "127.0.0.1", e.originPort, "", "")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		getPage(t, c, e.origin)
	})
	t.Run("32MiB", func(t *testing.T) {
		c, err := socksDial(e.fe.socksAddr, atypDomain, "127.0.0.1", e.originPort, "", "")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		resp, err := httpGet(c, bufio.NewReader(c), e.origin, "/big", false)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.ContentLength != bigSize {
			t.Fatalf("Content-Length %d, want %d", resp.ContentLength, bigSize)
		}
		checkBig(t, resp.Body, bigSize)
	})
}

func TestTestnetHTTPProxy(t *testing.T) {
	e := newEnv(t)
	t.Run("absolute-uri", func(t *testing.T) {
		pu := &url.URL{Scheme: "http", Host: e.fe.httpAddr}
		tr := &http.Transport{Proxy: http.ProxyURL(pu)}
		defer tr.CloseIdleConnections()
		cl := &http.Client{Transport: tr, Timeout: ioTimeout}
		resp, err := cl.Get("http://" + e.origin + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || string(b) != originPage {
			t.Fatalf("GET /: %s %q %v", resp.Status, b, err)
		}
		// A larger body, on the same proxy connection if it was kept.
		const n = 4 << 20
		resp, err = cl.Get(fmt.Sprintf("http://%s/big?n=%d", e.origin, n))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /big: %s", resp.Status)
		}
		checkBig(t, resp.Body, n)
	})
	t.Run("connect", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", e.fe.httpAddr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(ioTimeout))
		fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", e.origin, e.origin)
		br := bufio.NewReader(c)
		tp := textproto.NewReader(br)
		status, err := tp.ReadLine()
		if err != nil {
			t.Fatalf("CONNECT status: %v", err)
		}
		if !strings.HasPrefix(status, "HTTP/1.1 200") {
			t.Fatalf("CONNECT status %q, want 200", status)
		}
		if _, err := tp.ReadMIMEHeader(); err != nil {
			t.Fatalf("CONNECT headers: %v", err)
		}
		resp, err := httpGet(c, br, e.origin, "/", false)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || string(b) != originPage {
			t.Fatalf("page over the tunnel: %q %v", b, err)
		}
	})
}

// Killing the middle relay of the circuit that carries a SOCKS download ends
// the client's reads with EOF or an error (never a hang), and the next
// request works on a new circuit.
func TestTestnetKillRelayMidStream(t *testing.T) {
	e := newEnv(t)
	c, err := socksDial(e.fe.socksAddr, atypIPv4, "127.0.0.1", e.originPort, "", "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	resp, err := httpGet(c, bufio.NewReader(c), e.origin, "/big", false)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.CopyN(io.Discard, resp.Body, 1<<20)
	if err != nil {
		t.Fatalf("first MiB: %v after %d bytes", err, got)
	}

	var carrying []*circuit.ClientCirc
	for _, cc := range e.tn.Client.Manager().Open() {
		if cc.Streams() > 0 {
			carrying = append(carrying, cc)
		}
	}
	if len(carrying) != 1 {
		t.Fatalf("%d circuits carry streams, want 1", len(carrying))
	}
	old := carrying[0]
	hops := old.Hops()
	if len(hops) != 3 {
		t.Fatalf("circuit has %d hops, want 3", len(hops))
	}
	var middle *overlay.Node
	for _, r := range e.tn.Relays {
		if r.Descriptor().Identity == hops[1].Identity {
			middle = r
		}
	}
	if middle == nil {
		t.Fatal("the middle hop is none of the testnet's relays")
	}
	killed := time.Now()
	middle.Close()

	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	n, err := io.Copy(io.Discard, resp.Body)
	got += n
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		t.Fatalf("SOCKS read hung: no EOF or error within 15 s of killing the middle relay (%d of %d bytes read)", got, bigSize)
	case err == nil && got == bigSize:
		t.Fatalf("the whole body arrived although the middle relay was killed after 1 MiB")
	}
	t.Logf("read ended %v after the kill, after %d of %d bytes: %v", time.Since(killed).Round(time.Millisecond), got, bigSize, err)
	select {
	case <-old.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("the circuit through the dead relay is still open")
	}

	// A new request goes through on a circuit avoiding the dead relay, and
	// promptly: the dead relay may be picked again, but extending to it
	// fails at once (connection refused) and the manager moves on.
	start := time.Now()
	c2, err := socksDial(e.fe.socksAddr, atypIPv4, "127.0.0.1", e.originPort, "", "")
	if err != nil {
		t.Fatalf("SOCKS request after the kill: %v (after %v)", err, time.Since(start).Round(time.Millisecond))
	}
	defer c2.Close()
	getPage(t, c2, e.origin)
	if el := time.Since(start); el > 15*time.Second {
		t.Errorf("the first request after the kill took %v (want < 15 s)", el.Round(time.Millisecond))
	} else {
		t.Logf("the first request after the kill took %v", el.Round(time.Millisecond))
	}
	for _, cc := range e.tn.Client.Manager().Open() {
		if cc == old {
			t.Fatal("the dead circuit is still listed as open")
		}
	}
}

// SOCKS username/password isolate streams: different credentials, different
// circuits; the same credentials, one circuit.
func TestTestnetSOCKSIsolation(t *testing.T) {
	e := newEnv(t)
	mgr := e.tn.Client.Manager()
	before := len(mgr.Open()) - mgr.Preemptive() // a clean circuit goes to the first key that asks
	open := func(user, pass string) net.Conn {
		t.Helper()
		c, err := socksDial(e.fe.socksAddr, atypIPv4, "127.0.0.1", e.originPort, user, pass)
		if err != nil {
			t.Fatalf("%s/%s: %v", user, pass, err)
		}
		t.Cleanup(func() { c.Close() })
		// The stream stays open: the origin keeps the connection alive.
		resp, err := httpGet(c, bufio.NewReader(c), e.origin, "/", true)
		if err != nil {
			t.Fatalf("%s/%s: %v", user, pass, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(b) != originPage {
			t.Fatalf("%s/%s: page %q %v", user, pass, b, err)
		}
		return c
	}
	open("alice", "one")
	open("bob", "two")
	if n := len(mgr.Open()); n != before+2 {
		t.Fatalf("two credentials: %d open circuits, want %d", n, before+2)
	}
	open("alice", "one")
	if n := len(mgr.Open()); n != before+2 {
		t.Fatalf("same credentials again: %d open circuits, want %d", n, before+2)
	}
	// "alice"/"one" vs "alice"/"on"+"e"-like splits must not collide.
	open("alic", "eone")
	if n := len(mgr.Open()); n != before+3 {
		t.Fatalf("credentials with the same concatenation: %d open circuits, want %d", n, before+3)
	}
	var streams []int
	for _, cc := range mgr.Open() {
		if s := cc.Streams(); s > 0 {
			streams = append(streams, s)
		}
	}
	total := 0
	for _, s := range streams {
		total += s
	}
	if len(streams) != 3 || total != 4 {
		t.Fatalf("streams per circuit %v, want three circuits carrying 2+1+1", streams)
	}
}

// testnet.json parses back and lists every relay.
func TestTestnetState(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Join(t.TempDir(), "data")
	if err := writeState(dir, e.tn.state(e.fe)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "testnet.json")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("testnet.json mode %v, want 0600", fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s testnetState
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("testnet.json: %v\n%s", err, b)
	}
	if s.Network != "t" {
		t.Errorf("network %q, want t", s.Network)
	}
	if s.SOCKS != e.fe.socksAddr || s.HTTP != e.fe.httpAddr {
		t.Errorf("socks %q http %q, want %q %q", s.SOCKS, s.HTTP, e.fe.socksAddr, e.fe.httpAddr)
	}
	if len(s.Relays) != 5 {
		t.Fatalf("%d relays, want 5", len(s.Relays))
	}
	exits := 0
	for i, r := range s.Relays {
		bs, err := descriptor.ParseBootstrap(r.Bootstrap)
		if err != nil {
			t.Errorf("relay %d: %v", i, err)
			continue
		}
		d := e.tn.Relays[i].Descriptor()
		if bs.Identity != d.Identity || bs.Addr != "tcp://"+e.tn.Relays[i].Addr().String() {
			t.Errorf("relay %d: bootstrap %s does not match the relay", i, r.Bootstrap)
		}
		if r.Exit != d.Policy().IsExit() {
			t.Errorf("relay %d: exit %v, descriptor says %v", i, r.Exit, d.Policy().IsExit())
		}
		if r.Exit {
			exits++
		}
	}
	if exits == 0 || exits != e.tn.Exits {
		t.Errorf("%d exits in testnet.json, testnet has %d", exits, e.tn.Exits)
	}
	if _, err := os.Stat(filepath.Join(dir, ".testnet.json.tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file left behind: %v", err)
	}
}
