package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
)

// The darkmatter binary, built once for all process tests.
var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

// darkmatterBinary builds the command with "go build" into a temporary
// directory (removed by TestMain) and returns its path. It skips the test
// in -short mode, without a go tool, or where SIGINT cannot be sent.
func darkmatterBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped in -short mode")
	}
	if runtime.GOOS == "windows" {
		t.Skip("needs SIGINT")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH")
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "darkmatter-cmd-test-")
		if buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "darkmatter")
		start := time.Now()
		cmd := exec.Command(gobin, "build", "-o", buildBin, ".")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		t.Logf("built %s in %v", buildBin, time.Since(start).Round(time.Millisecond))
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

func removeBuiltBinary() {
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

// proc is a running darkmatter process whose stderr is kept line by line.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // cmd.Wait's result, set before done is closed

	mu      sync.Mutex
	lines   []string // complete stderr lines
	partial []byte
	stdout  bytes.Buffer
}

type stderrWriter struct{ p *proc }

func (w stderrWriter) Write(b []byte) (int, error) {
	p := w.p
	p.mu.Lock()
	defer p.mu.Unlock()
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			break
		}
		p.lines = append(p.lines, string(p.partial[:i]))
		p.partial = p.partial[i+1:]
	}
	return len(b), nil
}

type stdoutWriter struct{ p *proc }

func (w stdoutWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.stdout.Write(b)
}

// startProc starts the binary with args. The process is killed at the end
// of the test if it is still running; its output is logged if the test
// failed.
func startProc(t *testing.T, bin, name string, args ...string) *proc {
	t.Helper()
	return startCmd(t, name, exec.Command(bin, args...))
}

// startCmd is startProc for a command made elsewhere (natlab.Lab.Command:
// a program in one of the lab's namespaces). The process is killed at the
// end of the test if it is still running, before the lab's namespaces go
// (t.Cleanup runs last-registered first, and the lab is made before any
// process); its output is logged if the test failed.
func startCmd(t testing.TB, name string, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	p.cmd.Stderr = stderrWriter{p}
	p.cmd.Stdout = stdoutWriter{p}
	// Nothing may land in the real data directory.
	p.cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+t.TempDir(), "HOME="+t.TempDir())
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("--- %s (%s) output:\n%s", p.name, strings.Join(p.cmd.Args, " "), p.output())
		}
	})
	return p
}

// output returns stderr (and stdout, if any) so far.
func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := strings.Join(p.lines, "\n")
	if len(p.partial) > 0 {
		s += "\n" + string(p.partial)
	}
	if p.stdout.Len() > 0 {
		s += "\n[stdout]\n" + p.stdout.String()
	}
	return s
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitLine waits until a stderr line matches re and returns its submatches.
// It fails if the process exits first or nothing matches within timeout.
func (p *proc) waitLine(re *regexp.Regexp, timeout time.Duration) ([]string, error) {
	deadline := time.Now().Add(timeout)
	next := 0
	for {
		exited := p.exited() // read before the lines: no line can follow
		p.mu.Lock()
		lines := p.lines[next:]
		next = len(p.lines)
		p.mu.Unlock()
		for _, l := range lines {
			if m := re.FindStringSubmatch(l); m != nil {
				return m, nil
			}
		}
		if exited {
			return nil, fmt.Errorf("%s exited (%v) without a line matching %q", p.name, p.err, re)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s: no line matching %q within %v", p.name, re, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wait waits up to timeout for the process to exit and returns cmd.Wait's
// error; ok is false on a timeout.
func (p *proc) wait(timeout time.Duration) (err error, ok bool) {
	select {
	case <-p.done:
		return p.err, true
	case <-time.After(timeout):
		return nil, false
	}
}

// interrupt sends SIGINT and checks that the process exits with status 0
// within 10 s.
func (p *proc) interrupt(t *testing.T) {
	t.Helper()
	if p.exited() {
		t.Errorf("%s had already exited before SIGINT: %v", p.name, p.err)
		return
	}
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Errorf("%s: SIGINT: %v", p.name, err)
		return
	}
	start := time.Now()
	err, ok := p.wait(10 * time.Second)
	switch {
	case !ok:
		t.Errorf("%s still running 10 s after SIGINT", p.name)
	case err != nil:
		t.Errorf("%s: exit after SIGINT: %v (want status 0)", p.name, err)
	default:
		t.Logf("%s exited cleanly %v after SIGINT", p.name, time.Since(start).Round(time.Millisecond))
	}
}

var (
	reBootstrap  = regexp.MustCompile(`bootstrap: (\S+@\S+)\s*$`)
	reRelayReady = regexp.MustCompile(`darkmatter (?:exit )?relay .*ready on (\S+)`)
	reProxyReady = regexp.MustCompile(`darkmatter proxy ready: SOCKS5 (\S+), HTTP (\S+)\s*$`)
)

// startRelay starts a relay and waits for its ready and bootstrap lines.
func startRelay(t *testing.T, bin, name string, args ...string) (*proc, string) {
	t.Helper()
	args = append([]string{"relay", "--listen", "127.0.0.1:0", "--allow-private-addrs", "--log-level", "info"}, args...)
	p := startProc(t, bin, name, args...)
	if _, err := p.waitLine(reRelayReady, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	m, err := p.waitLine(reBootstrap, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := descriptor.ParseBootstrap(m[1]); err != nil {
		t.Fatalf("%s prints a bootstrap string that does not parse: %v", name, err)
	}
	return p, m[1]
}

// A network of four relay processes (two exits accepting only loopback) and
// a proxy process carries HTTP through SOCKS5 and the HTTP proxy; a relay of
// another network cannot join; SIGINT shuts every process down cleanly.
func TestProcessNetwork(t *testing.T) {
	bin := darkmatterBinary(t)
	dir := t.TempDir()
	origin, originPort := startOrigin(t)

	r1, boot := startRelay(t, bin, "relay1", "--data", filepath.Join(dir, "relay1"))
	relays := []*proc{r1}
	for i, extra := range [][]string{
		nil,
		{"--exit", "--exit-policy", "accept 127.0.0.1:*,reject *:*"},
		{"--exit", "--exit-policy", "accept 127.0.0.1:*,reject *:*"},
	} {
		name := fmt.Sprintf("relay%d", i+2)
		args := append([]string{"--data", filepath.Join(dir, name), "--bootstrap", boot}, extra...)
		p, _ := startRelay(t, bin, name, args...)
		relays = append(relays, p)
	}

	t.Run("network-mismatch", func(t *testing.T) {
		p := startProc(t, bin, "relay-other-network", "relay", "--listen", "127.0.0.1:0",
			"--data", filepath.Join(dir, "other"), "--network", "other", "--bootstrap", boot, "--log-level", "info")
		err, ok := p.wait(30 * time.Second)
		if !ok {
			t.Fatal("a relay of another network still runs 30 s after bootstrapping to relay 1")
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() <= 0 {
			t.Fatalf("relay of another network: exit %v, want a non-zero status\n%s", err, p.output())
		}
		if out := p.output(); !strings.Contains(out, "network") {
			t.Fatalf("the error does not mention the network:\n%s", out)
		}
		t.Logf("refused: %s", lastLine(p.output()))
	})

	px := startProc(t, bin, "proxy", "proxy", "--bootstrap", boot, "--allow-same-subnet",
		"--socks", "127.0.0.1:0", "--http", "127.0.0.1:0",
		"--data", filepath.Join(dir, "proxy"), "--log-level", "info")
	m, err := px.waitLine(reProxyReady, time.Minute)
	if err != nil {
		t.Errorf("proxy not ready: %v\nproxy output:\n%s", err, px.output())
	} else {
		socksAddr, httpAddr := m[1], m[2]
		t.Run("socks5", func(t *testing.T) {
			for _, atyp := range []byte{atypIPv4, atypDomain} {
				c, err := socksDial(socksAddr, atyp, "127.0.0.1", originPort, "", "")
				if err != nil {
					t.Fatalf("address type %d: %v", atyp, err)
				}
				getPage(t, c, origin)
				c.Close()
			}
		})
		t.Run("http", func(t *testing.T) {
			tr := &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: httpAddr})}
			defer tr.CloseIdleConnections()
			cl := &http.Client{Transport: tr, Timeout: time.Minute}
			resp, err := cl.Get("http://" + origin + "/")
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK || string(b) != originPage {
				t.Fatalf("GET through the HTTP proxy: %s %q %v", resp.Status, b, err)
			}
		})
		px.interrupt(t)
	}

	// The relays stop together, as on a machine shutting down.
	var wg sync.WaitGroup
	for _, p := range relays {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.interrupt(t)
		}()
	}
	wg.Wait()
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// keygen writes a 0600 key file and prints its .dark address.
func TestProcessKeygen(t *testing.T) {
	bin := darkmatterBinary(t)
	out := filepath.Join(t.TempDir(), "svc.key")
	p := startProc(t, bin, "keygen", "keygen", "--out", out)
	err, ok := p.wait(30 * time.Second)
	if !ok || err != nil {
		t.Fatalf("keygen: %v (finished: %v)", err, ok)
	}
	p.mu.Lock()
	addr := strings.TrimSpace(p.stdout.String())
	p.mu.Unlock()
	if !strings.HasSuffix(addr, ".dark") || strings.ContainsAny(addr, " \n") {
		t.Fatalf("keygen printed %q, want one .dark address", addr)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	k, err := keys.LoadServiceFile(out)
	if err != nil {
		t.Fatalf("the key file does not load: %v", err)
	}
	if got := k.Public().Address(); got != addr {
		t.Errorf("printed %s, the key file's address is %s", addr, got)
	}
}

// keygen refuses to overwrite an existing file, exits non-zero with an
// error naming it, and leaves it byte-identical; it also refuses a path
// that is a symlink to an existing file or to a missing one.
func TestProcessKeygenRefusesOverwrite(t *testing.T) {
	bin := darkmatterBinary(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "svc.key")
	old := []byte("an old key file the user must not lose\n")
	if err := os.WriteFile(out, old, 0o600); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(dir, "dangling.key")
	if err := os.Symlink(filepath.Join(dir, "target.key"), dangling); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{out, dangling} {
		p := startProc(t, bin, "keygen", "keygen", "--out", path)
		err, ok := p.wait(30 * time.Second)
		if !ok || err == nil {
			t.Fatalf("keygen over %s: %v (finished: %v), want a failure", path, err, ok)
		}
		p.mu.Lock()
		stdout, stderr := p.stdout.String(), strings.Join(p.lines, "\n")+string(p.partial)
		p.mu.Unlock()
		if stdout != "" || !strings.Contains(stderr, path+" already exists; not overwriting it") {
			t.Errorf("keygen over %s: stdout %q, stderr %q", path, stdout, stderr)
		}
	}
	if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, old) {
		t.Fatalf("old key file now %q, %v", got, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "target.key")); !os.IsNotExist(err) {
		t.Fatalf("keygen created the symlink's target: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Fatalf("directory holds %d entries, want the 2 it had", len(ents))
	}
}

// A relay whose identity key file is corrupt refuses to start, says why,
// and leaves the file alone.
func TestProcessCorruptIdentityKey(t *testing.T) {
	bin := darkmatterBinary(t)
	data := filepath.Join(t.TempDir(), "bad")
	kdir := filepath.Join(data, "keys")
	if err := os.MkdirAll(kdir, 0o700); err != nil {
		t.Fatal(err)
	}
	garbage := []byte("-----BEGIN DARKMATTER GARBAGE-----\nnot a key\n")
	path := filepath.Join(kdir, "identity.key")
	if err := os.WriteFile(path, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, bin, "relay-corrupt-key", "relay", "--listen", "127.0.0.1:0", "--data", data, "--log-level", "info")
	err, ok := p.wait(30 * time.Second)
	if !ok {
		t.Fatal("relay with a corrupt identity key still runs after 30 s")
	}
	out := p.output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() <= 0 {
		t.Fatalf("exit %v, want a non-zero status\n%s", err, out)
	}
	if strings.Contains(out, "ready on") {
		t.Errorf("the relay printed a ready line:\n%s", out)
	}
	if strings.Contains(out, "panic") || !strings.Contains(out, "identity") {
		t.Errorf("the error does not clearly name the identity key:\n%s", out)
	}
	t.Logf("refused: %s", lastLine(out))
	if b, err := os.ReadFile(path); err != nil || !bytes.Equal(b, garbage) {
		t.Errorf("the corrupt key file was changed or removed: %v", err)
	}
}
