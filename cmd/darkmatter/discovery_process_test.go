package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/internal/control"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
)

// Issue 12's process scenario: eight relay processes on loopback that know
// only one bootstrap relay find each other; a proxy that knows only that
// relay carries requests; a kill -9 of the exit carrying its traffic costs
// only a moment; a proxy restarted while its bootstrap relay is dead is
// usable at once from its saved relay list and guards.
func TestProcessDiscovery(t *testing.T) {
	bin := darkmatterBinary(t)
	dir := t.TempDir()
	origin, originPort := startOrigin(t)
	started := time.Now()

	type relay struct {
		name, data, id string
		exit           bool
		p              *proc
	}
	const numRelays = 8
	var relays []*relay
	byID := map[string]*relay{}
	var boot string
	for i := 1; i <= numRelays; i++ {
		r := &relay{name: fmt.Sprintf("relay%d", i), exit: i >= 2 && i <= 4}
		r.data = filepath.Join(dir, r.name)
		args := []string{"--data", r.data}
		if i > 1 {
			args = append(args, "--bootstrap", boot)
		}
		if r.exit {
			args = append(args, "--exit", "--exit-policy", "accept 127.0.0.1:*,reject *:*")
		}
		var bs string
		r.p, bs = startRelay(t, bin, r.name, args...)
		if i == 1 {
			boot = bs
		}
		b, err := descriptor.ParseBootstrap(bs)
		if err != nil {
			t.Fatal(err)
		}
		r.id = b.Identity.NodeID().String()
		relays = append(relays, r)
		byID[r.id] = r
	}
	t.Logf("%d relays started in %v", numRelays, time.Since(started).Round(time.Millisecond))

	// Discovery: every relay comes to know all eight, though each was
	// told of relay 1 only.
	start := time.Now()
	for _, r := range relays {
		var last int
		err := pollUntil(60*time.Second-time.Since(start), func() (bool, error) {
			st, err := queryStatus(r.data, false)
			if err != nil {
				return false, err
			}
			last = st.Relays
			return st.Relays == numRelays, nil
		})
		if err != nil {
			t.Fatalf("%s knows %d relays, want %d: %v", r.name, last, numRelays, err)
		}
	}
	t.Logf("every relay knows all %d relays %v after the last one started", numRelays, time.Since(start).Round(time.Millisecond))
	// The same, as an operator sees it.
	reKnown := regexp.MustCompile(`(?m)^relays known:\s+(\d+)\s*$`)
	for _, r := range relays[:2] {
		out := runStatus(t, bin, r.data)
		if m := reKnown.FindStringSubmatch(out); m == nil || m[1] != strconv.Itoa(numRelays) {
			t.Errorf("darkmatter status --data %s: want \"relays known: %d\" in\n%s", r.name, numRelays, out)
		}
	}

	// The proxy, told only of relay 1.
	proxyData := filepath.Join(dir, "proxy")
	proxyArgs := []string{"proxy", "--bootstrap", boot, "--allow-same-subnet",
		"--socks", "127.0.0.1:0", "--http", "127.0.0.1:0", "--data", proxyData, "--log-level", "info"}
	start = time.Now()
	px := startProc(t, bin, "proxy", proxyArgs...)
	m, err := px.waitLine(reProxyReady, 30*time.Second)
	if err != nil {
		t.Fatalf("proxy not ready: %v", err)
	}
	socksAddr, httpAddr := m[1], m[2]
	t.Logf("proxy ready in %v", time.Since(start).Round(time.Millisecond))
	if err := pollUntil(30*time.Second, func() (bool, error) {
		st, err := queryStatus(proxyData, false)
		return err == nil && st.Relays == numRelays, err
	}); err != nil {
		t.Errorf("the proxy does not come to know all %d relays: %v", numRelays, err)
	}

	page := "http://" + origin + "/"
	if curl, err := exec.LookPath("curl"); err == nil {
		for _, via := range [][]string{{"--socks5-hostname", socksAddr}, {"-x", "http://" + httpAddr}} {
			if err := curlGet(curl, page, 30*time.Second, via...); err != nil {
				t.Errorf("curl %s: %v", strings.Join(via, " "), err)
			}
		}
	} else {
		t.Log("no curl on PATH: Go clients only")
	}
	if err := socksGet(socksAddr, origin, originPort, 30*time.Second); err != nil {
		t.Errorf("GET through SOCKS5: %v", err)
	}
	if err := httpProxyGet(httpAddr, page, 30*time.Second); err != nil {
		t.Errorf("GET through the HTTP proxy: %v", err)
	}
	if t.Failed() {
		t.FailNow()
	}

	// Which relays carry the traffic: a stream held open shows its
	// circuit in the proxy's status, with the full path (unsafe view).
	path, err := streamPath(socksAddr, origin, originPort, proxyData)
	if err != nil {
		t.Fatal(err)
	}
	var hops []string
	for _, h := range path {
		id, _, _ := strings.Cut(h, "@")
		r := byID[id]
		if r == nil {
			t.Fatalf("the proxy's circuit goes through a relay we did not start: %s", h)
		}
		hops = append(hops, r.name)
	}
	t.Logf("the stream's circuit: %s", strings.Join(hops, " > "))
	victim := byID[strings.SplitN(path[len(path)-1], "@", 2)[0]]
	if !victim.exit {
		t.Fatalf("the circuit's last hop %s is no exit", victim.name)
	}

	// kill -9 the exit, then requests until one succeeds.
	killAndRecover(t, victim.p, "exit "+victim.name, socksAddr, origin, originPort)

	// The same with the guard of the circuit now carrying the traffic
	// (the bootstrap relay, usually: a new client's first guard): every
	// circuit of the proxy dies, and it moves to its next primary guard.
	path, err = streamPath(socksAddr, origin, originPort, proxyData)
	if err != nil {
		t.Fatal(err)
	}
	guard := byID[strings.SplitN(path[0], "@", 2)[0]]
	if guard == nil || guard == victim {
		t.Fatalf("the new circuit's guard %s is unknown or the dead exit", path[0])
	}
	killAndRecover(t, guard.p, "guard "+guard.name, socksAddr, origin, originPort)
	dead := map[*relay]bool{victim: true, guard: true}

	// Restart the proxy while its only bootstrap relay is dead too.
	px.interrupt(t)
	if r1 := relays[0]; !dead[r1] {
		if err := r1.p.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		if _, ok := r1.p.wait(5 * time.Second); !ok {
			t.Fatal("relay1 still runs 5 s after SIGKILL")
		}
		dead[r1] = true
	}
	start = time.Now()
	px2 := startProc(t, bin, "proxy-restarted", proxyArgs...)
	m, err = px2.waitLine(reProxyReady, 30*time.Second)
	if err != nil {
		t.Fatalf("restarted proxy not ready: %v", err)
	}
	ready := time.Since(start)
	socksAddr, httpAddr = m[1], m[2]
	attempts, err := retryGet(15*time.Second, func() error {
		return socksGet(socksAddr, origin, originPort, 5*time.Second)
	})
	first := time.Since(start)
	if err != nil {
		t.Fatalf("restarted proxy: no request succeeded (%d attempts): %v", attempts, err)
	}
	t.Logf("restarted proxy (bootstrap relay dead): ready after %v, first response after %v (%d attempts)",
		ready.Round(time.Millisecond), first.Round(time.Millisecond), attempts)
	if first > 10*time.Second {
		t.Errorf("restarted proxy served its first request after %v, want at once", first)
	}
	if err := httpProxyGet(httpAddr, page, 10*time.Second); err != nil {
		t.Errorf("restarted proxy, GET through the HTTP proxy: %v", err)
	}

	px2.interrupt(t)
	var wg sync.WaitGroup
	for _, r := range relays {
		if dead[r] {
			continue
		}
		wg.Go(func() { r.p.interrupt(t) })
	}
	wg.Wait()
	t.Logf("whole scenario: %v", time.Since(started).Round(time.Millisecond))
}

// killAndRecover kills p with SIGKILL, then makes requests through the
// SOCKS5 proxy until one succeeds, and logs how long that took. It fails
// if none succeeds within 15 s, and if that took over 10 s.
func killAndRecover(t *testing.T, p *proc, what, socksAddr, origin string, originPort int) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	if _, ok := p.wait(5 * time.Second); !ok {
		t.Fatalf("%s still runs 5 s after SIGKILL", what)
	}
	attempts, err := retryGet(15*time.Second, func() error {
		return socksGet(socksAddr, origin, originPort, 3*time.Second)
	})
	took := time.Since(killed)
	if err != nil {
		t.Fatalf("no request succeeded within 15 s of kill -9 of %s (%d attempts): %v", what, attempts, err)
	}
	t.Logf("kill -9 of %s: first successful request %v later (%d attempts)", what, took.Round(time.Millisecond), attempts)
	if took > 10*time.Second {
		t.Errorf("first request after kill -9 of %s took %v, want well under 10 s", what, took)
	}
	// And the next ones work at once.
	for i := range 3 {
		if err := socksGet(socksAddr, origin, originPort, 5*time.Second); err != nil {
			t.Errorf("request %d after recovery from kill -9 of %s: %v", i+1, what, err)
		}
	}
}

// queryStatus asks the node running with data directory data for its
// status over the control socket (what "darkmatter status" prints); with
// paths, circuit paths with full relay IDs and addresses.
func queryStatus(data string, paths bool) (*control.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return control.Query(ctx, data, control.Request{Cmd: control.CmdStatus, Paths: paths, Unsafe: paths})
}

// runStatus runs "darkmatter status --data data" and returns its output.
func runStatus(t *testing.T, bin, data string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "status", "--data", data).CombinedOutput()
	if err != nil {
		t.Errorf("darkmatter status: %v\n%s", err, out)
	}
	return string(out)
}

// pollUntil calls f every 100 ms until it reports true or timeout passes;
// the error is f's last one, or a timeout.
func pollUntil(timeout time.Duration, f func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := f()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("not within %v", timeout)
			}
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// retryGet calls get until it succeeds or bound passes (pausing 50 ms
// after a quick failure) and returns the number of attempts and the last
// error.
func retryGet(bound time.Duration, get func() error) (int, error) {
	deadline := time.Now().Add(bound)
	for n := 1; ; n++ {
		err := get()
		if err == nil || time.Now().After(deadline) {
			return n, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// socksGet fetches the origin's page through the SOCKS5 proxy, all within
// timeout.
func socksGet(socksAddr, origin string, originPort int, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", socksAddr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := time.AfterFunc(timeout, func() { c.Close() })
	defer stop.Stop()
	if err := socksHandshake(c, atypIPv4, "127.0.0.1", originPort, "", ""); err != nil {
		return err
	}
	resp, err := httpGet(c, bufio.NewReader(c), origin, "/", false)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return checkPage(resp.Body)
}

// httpProxyGet fetches page through the HTTP proxy within timeout.
func httpProxyGet(httpAddr, page string, timeout time.Duration) error {
	tr := &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: httpAddr})}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: timeout}
	resp, err := cl.Get(page)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return checkPage(resp.Body)
}

// curlGet fetches page with the curl binary and its proxy options via.
func curlGet(curl, page string, timeout time.Duration, via ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout+5*time.Second)
	defer cancel()
	args := append([]string{"-sS", "--fail", "-m", strconv.Itoa(int(timeout / time.Second))}, via...)
	cmd := exec.CommandContext(ctx, curl, append(args, page)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("%v: %s", err, stderr.String())
	}
	if string(out) != originPage {
		return fmt.Errorf("page %q, want %q", out, originPage)
	}
	return nil
}

func checkPage(body io.Reader) error {
	b, err := io.ReadAll(io.LimitReader(body, 1<<20))
	if err != nil {
		return err
	}
	if string(b) != originPage {
		return fmt.Errorf("page %q, want %q", b, originPage)
	}
	return nil
}

// streamPath opens a stream through the SOCKS5 proxy, fetches a page and,
// while the stream is still open, reads from the proxy's status the path
// ("ID@addr" per hop) of the circuit carrying it.
func streamPath(socksAddr, origin string, originPort int, proxyData string) ([]string, error) {
	c, err := socksDial(socksAddr, atypIPv4, "127.0.0.1", originPort, "", "")
	if err != nil {
		return nil, err
	}
	defer c.Close()
	resp, err := httpGet(c, bufio.NewReader(c), origin, "/", true)
	if err != nil {
		return nil, err
	}
	err = checkPage(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	st, err := queryStatus(proxyData, true)
	if err != nil {
		return nil, err
	}
	var found []string
	for _, cc := range st.Circuits {
		if cc.Streams > 0 {
			if found != nil {
				return nil, fmt.Errorf("several circuits carry streams: %+v", st.Circuits)
			}
			found = cc.Path
		}
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("no open circuit carries the stream: %+v", st.Circuits)
	}
	return found, nil
}
