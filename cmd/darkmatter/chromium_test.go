//go:build unix

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The demo page's heading (demoPage).
const demoHeading = "Hello from a darkmatter hidden service"

var reDemoService = regexp.MustCompile(`demo hidden service on (http://(\S+\.dark)/) ; try: curl --socks5-hostname (\S+) `)

// chromiumBinary returns Debian's chromium (or chromium-browser) from
// PATH, or skips the test.
func chromiumBinary(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium or chromium-browser on PATH: install Debian's chromium package (apt-get install chromium; .ci/run does) to run this test")
	return ""
}

// Headless Chromium loads the testnet's demo hidden-service page through
// the testnet's SOCKS5 proxy, by its .dark name, and shows its text.
//
// Chromium talks to a small SOCKS5 relay of the test (socksSpy) that
// passes CONNECTs to .dark names on to the testnet's SOCKS5 port and
// refuses all others. It shows what Chromium asks the proxy for (the
// .dark name itself, as a domain name: Chromium's socks5:// proxy resolves
// no names locally), and it keeps Chromium's own background requests
// (component updates, Google accounts) from reaching the testnet's exits
// and, through them, the Internet.
func TestChromiumHiddenService(t *testing.T) {
	chromium := chromiumBinary(t)
	bin := darkmatterBinary(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "testnet")

	start := time.Now()
	tn := startProc(t, bin, "testnet", "testnet", "--data", data, "--network", "chromium-test",
		"--socks", "127.0.0.1:0", "--http", "127.0.0.1:0", "--gateway", "127.0.0.1:0", "--log-level", "info")
	m, err := tn.waitLine(reDemoService, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	url, host, socksAddr := m[1], m[2], m[3]
	t.Logf("testnet with its demo hidden service up in %v: %s", time.Since(start).Round(time.Millisecond), url)
	// testnet.json names the same URL.
	if err := pollUntil(10*time.Second, func() (bool, error) {
		b, err := os.ReadFile(filepath.Join(data, "testnet.json"))
		if err != nil {
			return false, err
		}
		var st testnetState
		if err := json.Unmarshal(b, &st); err != nil {
			return false, err
		}
		return st.DemoService == url && st.SOCKS == socksAddr, nil
	}); err != nil {
		t.Errorf("testnet.json does not name demo_service %s and socks %s: %v", url, socksAddr, err)
	}

	spy := startSOCKSSpy(t, socksAddr)

	netlog := filepath.Join(dir, "netlog.json")
	out, took := runChromium(t, chromium, dir, []string{
		"--proxy-server=socks5://" + spy.addr(),
		// Every name Chromium would resolve itself maps to "not found"
		// (the proxy's address excepted): no local DNS lookup of the
		// .dark name, or of anything else, can happen at all.
		"--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
		"--log-net-log=" + netlog,
		"--dump-dom", url})
	if !strings.Contains(string(out), "<h1>"+demoHeading+"</h1>") {
		t.Fatalf("chromium's DOM of %s lacks %q:\n%s", url, demoHeading, out)
	}
	t.Logf("headless Chromium loaded %s in %v and shows %q", url, took.Round(time.Millisecond), demoHeading)

	// Chromium sent the .dark name itself to the proxy.
	dark := 0
	var refused []string
	for _, r := range spy.requests() {
		switch {
		case r.host == host && r.atyp == atypDomain && r.port == 80:
			dark++
		case strings.HasSuffix(r.host, ".dark"):
			t.Errorf("chromium asked the proxy for %s:%d (address type %d)", r.host, r.port, r.atyp)
		default:
			refused = append(refused, net.JoinHostPort(r.host, strconv.Itoa(r.port)))
		}
	}
	if dark == 0 {
		t.Errorf("chromium never sent %s as a SOCKS5 domain name (requests: %+v)", host, spy.requests())
	}
	t.Logf("chromium asked the SOCKS5 proxy for %s by name %d times; refused its own background requests: %v", host, dark, refused)

	checkNetLog(t, netlog, host)
}

// runChromium runs headless Chromium with args (after the flags every
// run shares: its profile, caches and home in dir, no background
// networking) and returns its standard output and how long it ran; it
// fails the test if Chromium fails or runs for more than 90 s.
func runChromium(t *testing.T, chromium, dir string, args []string) (string, time.Duration) {
	t.Helper()
	home := filepath.Join(dir, "home")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--user-data-dir=" + filepath.Join(dir, "profile"),
		"--no-first-run", "--no-default-browser-check", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions",
	}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_CACHE_HOME="+filepath.Join(home, ".cache"))
	// Chromium's helper processes share its process group: a timeout
	// kills them all.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	took := time.Since(start)
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // any helper left behind
	}
	if err != nil {
		t.Fatalf("chromium %s: %v after %v\nstderr:\n%s", args[len(args)-1], err, took.Round(time.Millisecond), stderr.String())
	}
	return string(out), took
}

// checkNetLog reads Chromium's net log and fails if any host-resolver
// event names host: Chromium never tried to resolve the .dark name. (The
// --host-resolver-rules above make a real lookup impossible anyway; this
// checks Chromium did not even ask.)
func checkNetLog(t *testing.T, path, host string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("chromium's net log: %v", err)
		return
	}
	var nl struct {
		Constants struct {
			LogEventTypes map[string]int `json:"logEventTypes"`
		} `json:"constants"`
		Events []struct {
			Type   int             `json:"type"`
			Params json.RawMessage `json:"params"`
		} `json:"events"`
	}
	if err := json.Unmarshal(b, &nl); err != nil {
		t.Errorf("chromium's net log does not parse: %v", err)
		return
	}
	names := make(map[int]string, len(nl.Constants.LogEventTypes))
	for name, id := range nl.Constants.LogEventTypes {
		names[id] = name
	}
	resolves, mentions := 0, 0
	for _, e := range nl.Events {
		if strings.Contains(strings.ToLower(string(e.Params)), host) {
			mentions++
		}
		name := names[e.Type]
		if !strings.HasPrefix(name, "HOST_RESOLVER") || len(e.Params) == 0 {
			continue
		}
		var p struct {
			Host string `json:"host"`
		}
		if err := json.Unmarshal(e.Params, &p); err != nil || p.Host == "" {
			continue
		}
		resolves++
		// The host is "scheme://host[:port]" after the mapping rules
		// ran (the network anonymization key, also in these events,
		// names the page's site and is no lookup).
		h := strings.ToLower(p.Host)
		switch {
		case strings.Contains(h, ".dark"):
			t.Errorf("chromium's host resolver was asked for the .dark name: %s %s", name, e.Params)
		case !strings.Contains(h, "~notfound") && !strings.Contains(h, "127.0.0.1"):
			t.Errorf("chromium resolved %q itself: the host resolver rules are not in force", p.Host)
		}
	}
	if mentions == 0 {
		t.Errorf("chromium's net log never names %s: it does not show this page load", host)
	}
	t.Logf("chromium's net log: %d events name %s; %d host resolver requests, none for it (each mapped to ~NOTFOUND)",
		mentions, host, resolves)
}

// socksRequest is one SOCKS5 CONNECT the spy saw.
type socksRequest struct {
	atyp byte
	host string
	port int
}

// socksSpy is a SOCKS5 relay on loopback: it records each CONNECT,
// passes those to a .dark name on to upstream, and refuses the others
// with reply 0x02 (not allowed by ruleset).
type socksSpy struct {
	ln       net.Listener
	upstream string
	wg       sync.WaitGroup

	mu     sync.Mutex
	reqs   []socksRequest
	conns  map[net.Conn]struct{}
	closed bool
}

func startSOCKSSpy(t *testing.T, upstream string) *socksSpy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &socksSpy{ln: ln, upstream: upstream, conns: make(map[net.Conn]struct{})}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !s.track(c) {
				c.Close()
				return
			}
			s.wg.Go(func() {
				defer s.untrack(c)
				s.serve(c)
			})
		}
	})
	t.Cleanup(s.close)
	return s
}

func (s *socksSpy) addr() string { return s.ln.Addr().String() }

func (s *socksSpy) requests() []socksRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]socksRequest(nil), s.reqs...)
}

func (s *socksSpy) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *socksSpy) untrack(c net.Conn) {
	c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// close stops the spy and waits for every connection's goroutines.
func (s *socksSpy) close() {
	s.ln.Close()
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *socksSpy) serve(c net.Conn) {
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	var hdr [4]byte
	if _, err := io.ReadFull(br, hdr[:2]); err != nil || hdr[0] != 0x05 {
		return
	}
	if _, err := br.Discard(int(hdr[1])); err != nil {
		return
	}
	if _, err := c.Write([]byte{0x05, 0x00}); err != nil {
		return
	}
	if _, err := io.ReadFull(br, hdr[:]); err != nil || hdr[0] != 0x05 {
		return
	}
	req := append([]byte(nil), hdr[:]...)
	var addr []byte
	switch hdr[3] {
	case atypIPv4:
		addr = make([]byte, 4)
	case 0x04:
		addr = make([]byte, 16)
	case atypDomain:
		l, err := br.ReadByte()
		if err != nil {
			return
		}
		req = append(req, l)
		addr = make([]byte, l)
	default:
		return
	}
	var port [2]byte
	if _, err := io.ReadFull(br, addr); err != nil {
		return
	}
	if _, err := io.ReadFull(br, port[:]); err != nil {
		return
	}
	req = append(append(req, addr...), port[:]...)
	r := socksRequest{atyp: hdr[3], host: strings.ToLower(string(addr)), port: int(port[0])<<8 | int(port[1])}
	if r.atyp != atypDomain {
		r.host = net.IP(addr).String()
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, r)
	s.mu.Unlock()
	if hdr[1] != 0x01 || r.atyp != atypDomain || !strings.HasSuffix(r.host, ".dark") {
		c.Write([]byte{0x05, 0x02, 0x00, atypIPv4, 0, 0, 0, 0, 0, 0})
		return
	}

	u, err := net.DialTimeout("tcp", s.upstream, 10*time.Second)
	if err != nil {
		c.Write([]byte{0x05, 0x01, 0x00, atypIPv4, 0, 0, 0, 0, 0, 0})
		return
	}
	if !s.track(u) {
		u.Close()
		return
	}
	defer s.untrack(u)
	u.SetDeadline(time.Now().Add(30 * time.Second))
	var sel [2]byte
	if _, err := u.Write([]byte{0x05, 0x01, 0x00}); err != nil {
		return
	}
	if _, err := io.ReadFull(u, sel[:]); err != nil || sel != [2]byte{0x05, 0x00} {
		return
	}
	if _, err := u.Write(req); err != nil {
		return
	}
	// The upstream's reply and everything after it go to Chromium as
	// they are; the first side to finish ends both.
	c.SetDeadline(time.Time{})
	u.SetDeadline(time.Time{})
	done := make(chan struct{})
	go func() {
		io.Copy(u, br)
		u.Close()
		c.Close()
		close(done)
	}()
	io.Copy(c, u)
	u.Close()
	c.Close()
	<-done
}
