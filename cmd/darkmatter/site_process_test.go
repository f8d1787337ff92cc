package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/apps/sites"
)

var (
	reSitePublished = regexp.MustCompile(`^published (\S+\.dark) \((\d+) files`)
	reHosting       = regexp.MustCompile(`hosting (\S+\.dark) in `)
	reGatewayOn     = regexp.MustCompile(`gateway on http://(\S+)/ `)
)

// siteTestFiles writes a multi-file site: pages, a style sheet, a file in
// a subdirectory, a binary file of several DHT chunks, and enough small
// files that a client asks each host for some of them.
func siteTestFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{
		"/index.html":     []byte("<!doctype html><title>process site</title><h1>home</h1>\n"),
		"/style.css":      []byte("h1 { color: red }\n"),
		"/docs/page.html": []byte("<!doctype html><title>a page</title><p>in a directory</p>\n"),
	}
	big := make([]byte, 300<<10)
	rand.Read(big)
	files["/big.bin"] = big
	for i := range 12 {
		files[fmt.Sprintf("/notes/n%02d.txt", i)] = fmt.Appendf(nil, "note %d\n", i)
	}
	for p, b := range files {
		path := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// A site published from a directory is taken by two host processes and
// served, byte for byte, through the HTTP proxy (by name and by address)
// and through the gateway; a host that serves tampered files is caught
// and another used; with one host killed, a fresh client still gets
// every file from the other.
func TestProcessSiteHostsProxyGateway(t *testing.T) {
	bin := darkmatterBinary(t)
	dir := t.TempDir()
	boot := startNameRelays(t, bin, dir, 4)

	siteDir := filepath.Join(dir, "site")
	files := siteTestFiles(t, siteDir)
	key := newAuthorKey(t, bin, dir)
	pub := &dmClient{bin: bin, boot: boot, data: filepath.Join(dir, "publisher")}
	out := pub.mustRun(t, "site publish", append([]string{"site", "publish", siteDir, "--key", key}, nameFlags...)...)
	m := reSitePublished.FindStringSubmatch(out)
	if m == nil || m[2] != fmt.Sprint(len(files)) {
		t.Fatalf("site publish printed %q", out)
	}
	addr := m[1]
	if _, err := sites.ParseAddress(addr); err != nil {
		t.Fatalf("published address %q: %v", addr, err)
	}

	var hosts []*proc
	for i := 1; i <= 2; i++ {
		h := &dmClient{bin: bin, boot: boot, data: filepath.Join(dir, fmt.Sprintf("host%d", i))}
		p := h.start(t, fmt.Sprintf("host%d", i), append([]string{"site", "host", addr, "--log-level", "info"}, nameFlags...)...)
		if _, err := p.waitLine(reHosting, 60*time.Second); err != nil {
			t.Fatalf("host %d: %v", i, err)
		}
		hosts = append(hosts, p)
	}
	pub.mustRun(t, "name register", append([]string{"name", "register", "mysite", "--key", key, "--site", addr}, nameFlags...)...)

	px := startSiteProxy(t, bin, boot, filepath.Join(dir, "proxy1"))
	gw := (&dmClient{bin: bin, boot: boot, data: filepath.Join(dir, "gateway")}).start(t, "gateway",
		append([]string{"gateway", "--listen", "127.0.0.1:0", "--log-level", "info"}, nameFlags...)...)
	gm, err := gw.waitLine(reGatewayOn, 60*time.Second)
	if err != nil {
		t.Fatalf("gateway: %v", err)
	}
	domain := gm[1]
	_, port, _ := net.SplitHostPort(domain)

	paths := sortedPaths(files)
	for _, p := range paths {
		for _, site := range []string{"mysite.dark", addr} {
			got, err := proxyFetch(px.http, "http://"+site+p)
			if err != nil || !bytes.Equal(got, files[p]) {
				t.Fatalf("%s through the proxy: %d bytes, %v; want %d bytes", p, len(got), err, len(files[p]))
			}
		}
		got, err := gatewayFetch("127.0.0.1:"+port, "mysite."+domain, p)
		if err != nil || !bytes.Equal(got, files[p]) {
			t.Fatalf("%s through the gateway: %d bytes, %v; want %d bytes", p, len(got), err, len(files[p]))
		}
	}
	// The directory's index, the path form's redirect.
	if got, err := proxyFetch(px.http, "http://mysite.dark/"); err != nil || !bytes.Equal(got, files["/index.html"]) {
		t.Fatalf("/ through the proxy: %q, %v", got, err)
	}
	if loc, err := gatewayRedirect("127.0.0.1:"+port, domain, "/mysite.dark/docs/page.html"); err != nil || loc != "http://mysite."+domain+"/docs/page.html" {
		t.Fatalf("path form redirects to %q, %v", loc, err)
	}
	px.p.interrupt(t)

	// Host 1 turns malicious: every file in its store is altered. A fresh
	// client rejects what it serves and takes the files from host 2.
	tamperStore(t, filepath.Join(dir, "host1", "sites"))
	px2 := startSiteProxy(t, bin, boot, filepath.Join(dir, "proxy2"))
	for _, p := range paths {
		got, err := proxyFetch(px2.http, "http://mysite.dark"+p)
		if err != nil || !bytes.Equal(got, files[p]) {
			t.Fatalf("%s with a tampering host: %d bytes, %v", p, len(got), err)
		}
	}
	st, err := queryStatus(px2.data, false)
	if err != nil {
		t.Fatal(err)
	}
	if n := counter(t, st, "sites tampered blobs rejected"); n < 1 {
		t.Errorf("the client rejected %d tampered blobs; host 1 served %d files, each tampered", n, len(paths))
	}
	px2.p.interrupt(t)

	// Host 1 dies (SIGKILL); a fresh client gets every file from host 2,
	// here by the user's own name for the site (a petname).
	hosts[0].cmd.Process.Signal(syscall.SIGKILL)
	pet := filepath.Join(dir, "petnames")
	if err := os.WriteFile(pet, []byte("# mine\nfav.site "+addr+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	px3 := startSiteProxy(t, bin, boot, filepath.Join(dir, "proxy3"), "--petnames", pet)
	for i, p := range paths {
		host := addr
		if i%2 == 1 {
			host = "fav.site.dark"
		}
		got, err := proxyFetch(px3.http, "http://"+host+p)
		if err != nil || !bytes.Equal(got, files[p]) {
			t.Fatalf("%s with host 1 dead: %d bytes, %v", p, len(got), err)
		}
	}
	st, err = queryStatus(px3.data, false)
	if err != nil {
		t.Fatal(err)
	}
	if n := counter(t, st, "sites files from hosts"); n != len(paths) {
		t.Errorf("%d files came from hosts, want all %d (not from the DHT)", n, len(paths))
	}
}

// siteProxy is a proxy process of a site test.
type siteProxy struct {
	p          *proc
	data, http string
}

func startSiteProxy(t *testing.T, bin, boot, data string, extra ...string) *siteProxy {
	t.Helper()
	args := append([]string{"proxy", "--bootstrap", boot, "--socks", "127.0.0.1:0", "--http", "127.0.0.1:0",
		"--data", data, "--log-level", "info"}, append(append(hsNetFlags, nameFlags...), extra...)...)
	p := startProc(t, bin, filepath.Base(data), args...)
	m, err := p.waitLine(reProxyReady, 60*time.Second)
	if err != nil {
		t.Fatalf("proxy not ready: %v", err)
	}
	return &siteProxy{p: p, data: data, http: m[2]}
}

func sortedPaths(files map[string][]byte) []string {
	out := make([]string, 0, len(files))
	for p := range files {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// proxyFetch GETs page through the HTTP proxy and returns the body of a
// 200 answer.
func proxyFetch(httpAddr, page string) ([]byte, error) {
	tr := &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: httpAddr})}
	defer tr.CloseIdleConnections()
	return get(&http.Client{Transport: tr, Timeout: 60 * time.Second}, page, "")
}

// gatewayFetch GETs path from the gateway at addr with Host host.
func gatewayFetch(addr, host, path string) ([]byte, error) {
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	return get(&http.Client{Transport: tr, Timeout: 60 * time.Second}, "http://"+addr+path, host)
}

func get(cl *http.Client, page, host string) ([]byte, error) {
	req, err := http.NewRequest(http.MethodGet, page, nil)
	if err != nil {
		return nil, err
	}
	if host != "" {
		req.Host = host
	}
	resp, err := cl.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %s: %s", resp.Status, firstLine(b))
	}
	return b, err
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	return s
}

// gatewayRedirect GETs path from the gateway's own host and returns the
// Location of its redirect.
func gatewayRedirect(addr, domain, path string) (string, error) {
	cl := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return "", err
	}
	req.Host = domain
	resp, err := cl.Do(req)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently {
		return "", fmt.Errorf("status %s", resp.Status)
	}
	return resp.Header.Get("Location"), nil
}

// tamperStore flips a byte of every blob in a host's store directory.
func tamperStore(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if !e.Type().IsRegular() || len(e.Name()) != 64 {
			continue
		}
		path := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 0 {
			b = []byte{'x'}
		} else {
			b[len(b)/2] ^= 0x55
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n == 0 {
		t.Fatalf("no blob in %s", dir)
	}
}
