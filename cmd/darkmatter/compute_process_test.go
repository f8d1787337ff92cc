package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/apps/compute/examples/prebuilt"
	"github.com/darkmatter/darkmatter/apps/compute/examples/render/page"
	"github.com/darkmatter/darkmatter/apps/compute/examples/wordcount/words"
	"github.com/darkmatter/darkmatter/internal/control"
)

// Issue 14's process scenarios: relay processes that are executors, and
// module publish, blob and call processes of the real binary on loopback.

// computeDHTFlags raise the DHT's per-peer limits, as on any network of a
// handful of nodes: a module is a hundred-odd records stored at once.
var computeDHTFlags = []string{"--dht-request-rate", "5000", "--dht-request-burst", "10000",
	"--dht-stores-per-minute", "60000", "--dht-store-burst", "10000"}

// computeRelay is one relay process of a compute test network.
type computeRelay struct {
	name, data, boot string
	executor         bool
	p                *proc
}

// startComputeRelays starts relay processes named prefix1.. (executors
// if executor) bootstrapping from boot (the first one is the bootstrap
// relay when boot is empty; the one after it an exit that accepts only
// 127.0.0.1:9, for the clients' first circuit).
func startComputeRelays(t *testing.T, bin, dir, prefix string, n int, executor bool, boot string) []*computeRelay {
	t.Helper()
	var out []*computeRelay
	first := boot == "" // this group starts the network
	for i := 1; i <= n; i++ {
		r := &computeRelay{name: fmt.Sprintf("%s%d", prefix, i), executor: executor}
		r.data = filepath.Join(dir, r.name)
		args := append([]string{"--data", r.data, "--gossip-interval", "300ms"}, hsNetFlags...)
		args = append(args, computeDHTFlags...)
		if executor {
			args = append(args, "--executor", "--executor-timeout", "1m")
		}
		if i > 1 || !first {
			args = append(args, "--bootstrap", boot)
		}
		if first && i == 2 {
			args = append(args, "--exit", "--exit-policy", "accept 127.0.0.1:9,reject *:*")
		}
		r.p, r.boot = startRelay(t, bin, r.name, args...)
		if boot == "" {
			boot = r.boot
		}
		out = append(out, r)
	}
	return out
}

// waitKnowAll waits until every relay knows all of them.
func waitKnowAll(t *testing.T, relays []*computeRelay) {
	t.Helper()
	for _, r := range relays {
		var last int
		if err := pollUntil(30*time.Second, func() (bool, error) {
			st, err := queryStatus(r.data, false)
			if err != nil {
				return false, err
			}
			last = st.Relays
			return st.Relays == len(relays), nil
		}); err != nil {
			t.Fatalf("%s knows %d relays, want %d: %v", r.name, last, len(relays), err)
		}
	}
}

// dmClient runs client commands against a test network, all with one
// data directory (one relay list and guard sample).
type dmClient struct {
	bin, boot, data string
}

// run runs a client command to its end and returns its stdout; err is
// the process's exit error, and stderr what it said.
func (c *dmClient) run(t *testing.T, name string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	p := c.start(t, name, args...)
	err, ok := p.wait(90 * time.Second)
	if !ok {
		t.Fatalf("%s still running after 90 s", name)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stdout.String(), strings.Join(p.lines, "\n") + string(p.partial), err
}

// start starts a client command: its arguments, then the flags that reach
// the network (after them: the command takes flags after its arguments).
func (c *dmClient) start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	args = append(args, "--bootstrap", c.boot, "--data", c.data)
	return startProc(t, c.bin, name, append(args, hsNetFlags...)...)
}

// mustRun is run for a command that must succeed; it returns its stdout.
func (c *dmClient) mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	start := time.Now()
	out, errOut, err := c.run(t, name, args...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, errOut)
	}
	t.Logf("%s: %v", name, time.Since(start).Round(time.Millisecond))
	return out
}

// writeModule writes a module to dir/name.wasm.
func writeModule(t *testing.T, dir, name string, code []byte) string {
	t.Helper()
	path := filepath.Join(dir, name+".wasm")
	if err := os.WriteFile(path, code, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

var reHash = regexp.MustCompile(`^[0-9a-f]{64}\n$`)

// publishModule runs module publish and checks that it prints the hash.
func (c *dmClient) publishModule(t *testing.T, key, path string, extra ...string) string {
	t.Helper()
	code, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := c.mustRun(t, "publish "+filepath.Base(path), append([]string{"module", "publish", path, "--key", key}, extra...)...)
	want := sha256.Sum256(code)
	if !reHash.MatchString(out) || strings.TrimSpace(out) != hex.EncodeToString(want[:]) {
		t.Fatalf("module publish printed %q, want the module's SHA-256 %x", out, want)
	}
	return strings.TrimSpace(out)
}

// newAuthorKey runs keygen --author and returns the key file.
func newAuthorKey(t *testing.T, bin, dir string) string {
	t.Helper()
	key := filepath.Join(dir, "author.key")
	p := startProc(t, bin, "keygen", "keygen", "--author", "--out", key)
	if err, ok := p.wait(30 * time.Second); !ok || err != nil {
		t.Fatalf("keygen --author: %v\n%s", err, p.output())
	}
	p.mu.Lock()
	pub := p.stdout.String()
	p.mu.Unlock()
	if !reHash.MatchString(pub) {
		t.Fatalf("keygen --author printed %q, want a public key in hex", pub)
	}
	return key
}

// A module published with module publish runs with darkmatter call, with
// a literal input and with a blob (blob put) as its input; blob get gives
// the blob back; a function the module does not export fails the call
// with the executor's reason and a non-zero exit.
func TestProcessCallWordCount(t *testing.T) {
	bin := darkmatterBinary(t)
	dir := t.TempDir()
	start := time.Now()
	relays := startComputeRelays(t, bin, dir, "relay", 3, false, "")
	relays = append(relays, startComputeRelays(t, bin, dir, "exec", 3, true, relays[0].boot)...)
	waitKnowAll(t, relays)
	t.Logf("%d relays up in %v", len(relays), time.Since(start).Round(time.Millisecond))
	cl := &dmClient{bin: bin, boot: relays[0].boot, data: filepath.Join(dir, "client")}
	key := newAuthorKey(t, bin, dir)

	wc := cl.publishModule(t, key, writeModule(t, dir, "wordcount", prebuilt.WordCount()))
	text := "the quick brown fox\njumps over the lazy dog"
	out := cl.mustRun(t, "call count", "call", wc, "count", "--input", text)
	if want := strconv.Itoa(words.Count([]byte(text))); out != want {
		t.Fatalf("call printed %q, want %s", out, want)
	}

	_, errOut, err := cl.run(t, "call nope", "call", wc, "nope", "--input", "x")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() <= 0 {
		t.Fatalf("call of an unknown function: exit %v, want a non-zero status\n%s", err, errOut)
	}
	if !strings.Contains(errOut, `bad module: the module exports no function "nope"`) {
		t.Fatalf("call of an unknown function says\n%s\nwant the executor's reason", errOut)
	}
	t.Logf("refused: %s", lastLine(errOut))

	// A blob as the input of the render module.
	rd := cl.publishModule(t, key, writeModule(t, dir, "render", prebuilt.Render()), "--function", "page")
	doc := []byte(`{"title":"Blocks <today>","items":[{"name":"height","value":"1234"}]}`)
	docFile := filepath.Join(dir, "doc.json")
	if err := os.WriteFile(docFile, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	bh := strings.TrimSpace(cl.mustRun(t, "blob put", "blob", "put", docFile))
	if want := sha256.Sum256(doc); bh != hex.EncodeToString(want[:]) {
		t.Fatalf("blob put printed %q, want %x", bh, want)
	}
	if got := cl.mustRun(t, "blob get", "blob", "get", bh); got != string(doc) {
		t.Fatalf("blob get wrote %q, want %q", got, doc)
	}
	html := cl.mustRun(t, "call page", "call", rd, "page", "--input-blob", bh)
	if want, _ := page.Render(doc); html != string(want) {
		t.Fatalf("render of the blob printed\n%s\nwant\n%s", html, want)
	}
	t.Logf("test done in %v", time.Since(start).Round(time.Millisecond))
}

// The fan-out module's four sub-calls run on at least 3 executor
// processes and the merged count comes back; no executor process, the
// ones that ran a sub-call above all, ever holds a connection to the
// requester's process: its only links are to its guards, relays that are
// no executors (the client picked them before any executor existed, and
// keeps them in its data directory). The check is on the sockets
// themselves (/proc), sampled while the call runs, and it is shown to see
// links: it finds the client's links to its guards.
func TestProcessCallFanOut(t *testing.T) {
	bin := darkmatterBinary(t)
	if runtime.GOOS != "linux" {
		t.Skip("reads the sockets of processes in /proc")
	}
	dir := t.TempDir()
	start := time.Now()
	plain := startComputeRelays(t, bin, dir, "relay", 3, false, "")
	waitKnowAll(t, plain)
	cl := &dmClient{bin: bin, boot: plain[0].boot, data: filepath.Join(dir, "client")}
	key := newAuthorKey(t, bin, dir)
	// The client's first run samples its guards among the relays there
	// are: none is an executor.
	warm := filepath.Join(dir, "warm")
	if err := os.WriteFile(warm, []byte("warm-up"), 0o644); err != nil {
		t.Fatal(err)
	}
	cl.mustRun(t, "blob put (guards)", "blob", "put", warm)

	execs := startComputeRelays(t, bin, dir, "exec", 5, true, plain[0].boot)
	all := append(append([]*computeRelay{}, plain...), execs...)
	waitKnowAll(t, all)
	t.Logf("%d relays up in %v", len(all), time.Since(start).Round(time.Millisecond))

	wc := cl.publishModule(t, key, writeModule(t, dir, "wordcount", prebuilt.WordCount()))
	fo := cl.publishModule(t, key, writeModule(t, dir, "fanout", prebuilt.FanOut()), "--subcalls")
	text := strings.Repeat("one two three four five six seven eight nine ten\n", 40)

	callStart := time.Now()
	p := cl.start(t, "call fanout", "call", fo, "count", "--input", wc+"\n"+text, "--timeout", "1m")
	pids := map[int]string{}
	for _, r := range all {
		pids[r.p.cmd.Process.Pid] = r.name
	}
	linked := map[string]bool{} // relays seen with a socket to the client
	samples := 0
	for !p.exited() {
		l, err := linkedTo(p.cmd.Process.Pid, pids)
		if err == nil {
			samples++
			for name := range l {
				linked[name] = true
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.mu.Lock()
	out := p.stdout.String()
	p.mu.Unlock()
	if p.err != nil {
		t.Fatalf("call fanout: %v\n%s", p.err, p.output())
	}
	if want := strconv.Itoa(words.Count([]byte(text))); out != want {
		t.Fatalf("fan-out printed %q, want %s", out, want)
	}
	t.Logf("fan-out call: %v, %d socket samples", time.Since(callStart).Round(time.Millisecond), samples)

	// Who ran what, from each executor's status.
	var root string
	var subs []string
	for _, r := range execs {
		st, err := queryStatus(r.data, false)
		if err != nil {
			t.Fatal(err)
		}
		ok, delegated := counter(t, st, "executor calls ok"), counter(t, st, "executor sub-calls delegated")
		switch {
		case delegated > 0:
			if root != "" || delegated != 4 {
				t.Errorf("%s delegated %d sub-calls (root so far %q), want one root that delegated 4", r.name, delegated, root)
			}
			root = r.name
		case ok > 0:
			subs = append(subs, r.name)
		}
	}
	t.Logf("root call on %s, sub-calls on %v", root, subs)
	if root == "" || len(subs) < 3 {
		t.Fatalf("root %q, sub-calls on %d executor processes %v, want at least 3", root, len(subs), subs)
	}

	// The requester's address: the detector sees the client's links (to
	// its guards), and no executor is among them.
	if len(linked) == 0 {
		t.Fatalf("no relay process seen linked to the client in %d samples: the check would see nothing", samples)
	}
	for _, r := range execs {
		if linked[r.name] {
			role := "an executor"
			if r.name == root {
				role = "the root executor"
			} else if contains(subs, r.name) {
				role = "a sub-executor"
			}
			t.Errorf("%s (%s) held a connection to the requester's process", r.name, role)
		}
	}
	var seen []string
	for n := range linked {
		seen = append(seen, n)
	}
	t.Logf("the client's links went to %v only; test done in %v", seen, time.Since(start).Round(time.Millisecond))
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// counter returns a numeric counter of a status.
func counter(t *testing.T, st *control.Status, name string) int {
	t.Helper()
	for _, v := range st.Counters {
		if v.Name == name {
			n, err := strconv.Atoi(v.Value)
			if err != nil {
				t.Fatalf("counter %q = %q", name, v.Value)
			}
			return n
		}
	}
	t.Fatalf("status has no counter %q", name)
	return 0
}

// tcpSocket is a line of /proc/net/tcp.
type tcpSocket struct{ local, remote, inode string }

// linkedTo returns the names of the processes in pids that hold the other
// end of a loopback TCP connection of process client (Linux: the sockets
// of /proc/net/tcp, matched by ports, owned through /proc/PID/fd).
func linkedTo(client int, pids map[int]string) (map[string]bool, error) {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return nil, err
	}
	var socks []tcpSocket
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) >= 10 && f[3] == "01" { // ESTABLISHED
			socks = append(socks, tcpSocket{f[1], f[2], f[9]})
		}
	}
	owner := map[string]int{} // socket inode → pid
	for pid := range pids {
		for _, ino := range socketInodes(pid) {
			owner[ino] = pid
		}
	}
	mine := map[string]bool{}
	for _, ino := range socketInodes(client) {
		mine[ino] = true
	}
	out := map[string]bool{}
	for _, s := range socks {
		if !mine[s.inode] {
			continue
		}
		for _, peer := range socks { // the other end: the same ports swapped
			if peer.local == s.remote && peer.remote == s.local {
				if pid, ok := owner[peer.inode]; ok {
					out[pids[pid]] = true
				}
			}
		}
	}
	return out, nil
}

// socketInodes returns the inodes of the sockets process pid holds.
func socketInodes(pid int) []string {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return nil
	}
	var out []string
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			out = append(out, strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]"))
		}
	}
	return out
}

var (
	reTestnetWordCount = regexp.MustCompile(`word count on an executor; try: darkmatter (call .*)$`)
	reTestnetFanOut    = regexp.MustCompile(`fan-out over 4 executors; try: darkmatter (call .*)$`)
	reTestnetReady     = regexp.MustCompile(`darkmatter testnet ready: .*all executors`)
)

// The call lines the testnet prints work as printed, pasted into a shell
// of another process: the word count and the fan-out.
func TestProcessTestnetCallLines(t *testing.T) {
	bin := darkmatterBinary(t)
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	dir := t.TempDir()
	start := time.Now()
	tn := startProc(t, bin, "testnet", "testnet", "--data", filepath.Join(dir, "testnet"),
		"--socks", "127.0.0.1:0", "--http", "127.0.0.1:0", "--gateway", "127.0.0.1:0", "--log-level", "info")
	if _, err := tn.waitLine(reTestnetReady, 90*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("testnet ready in %v", time.Since(start).Round(time.Millisecond))
	for _, c := range []struct {
		re   *regexp.Regexp
		want string
	}{
		{reTestnetWordCount, "3"},
		{reTestnetFanOut, strconv.Itoa(words.Count([]byte(demoFanOutText)))},
	} {
		m, err := tn.waitLine(c.re, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		line := shellQuote(bin) + " " + m[1]
		callStart := time.Now()
		p := startProc(t, sh, "sh -c "+m[1][:40], "-c", line)
		if err, ok := p.wait(90 * time.Second); !ok || err != nil {
			t.Fatalf("%s: %v (finished %v)\n%s", line, err, ok, p.output())
		}
		p.mu.Lock()
		out := p.stdout.String()
		p.mu.Unlock()
		if out != c.want {
			t.Fatalf("%s\nprinted %q, want %q", line, out, c.want)
		}
		t.Logf("printed line ran in %v: %s", time.Since(callStart).Round(time.Millisecond), c.re)
	}
	tn.interrupt(t)
}
