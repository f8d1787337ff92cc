package main

import (
	"context"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit/protover"
	"github.com/darkmatter/darkmatter/internal/control"
	"github.com/darkmatter/darkmatter/overlay"
	"github.com/darkmatter/darkmatter/overlay/onion"
)

// runApp runs the command line in process and returns its standard output.
func runApp(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out strings.Builder
	app := newApp()
	app.Writer, app.ErrWriter = &out, io.Discard
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := app.RunContext(ctx, append([]string{"darkmatter"}, args...))
	return out.String(), err
}

// --version names the build and every subprotocol an exit relay signs.
func TestVersion(t *testing.T) {
	out, err := runApp(t, "--version")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "darkmatter dev\n") {
		t.Errorf("output %q, want the version first", out)
	}
	p := overlay.Protocols(true)
	if !p.Supports(protover.Link, 1) || !p.Supports(protover.Relay, 2) || !p.Supports(protover.Exit, 1) || !p.Supports(protover.Dir, 1) {
		t.Errorf("protocols %s lack a subprotocol relays speak", p)
	}
	if !strings.Contains(out, "protocols: "+p.String()+"\n") {
		t.Errorf("output %q, want the protocols %s", out, p)
	}
	if overlay.Protocols(false).Supports(protover.Exit, 1) {
		t.Error("a non-exit claims Exit")
	}
}

// fullID matches a whole node ID (64 hex digits).
var fullID = regexp.MustCompile(`[0-9a-f]{64}`)

// status against a running testnet shows its relays, links and circuits,
// and never an address or a full node ID unless asked for the unsafe view.
func TestStatusTestnet(t *testing.T) {
	e := newEnv(t)
	// Open a circuit: a page through the SOCKS proxy.
	c, err := socksDial(e.fe.socksAddr, atypIPv4, "127.0.0.1", e.originPort, "", "")
	if err != nil {
		t.Fatal(err)
	}
	getPage(t, c, e.origin)
	c.Close()

	dir := t.TempDir()
	ctl, err := control.Listen(dir, func(req control.Request) (*control.Status, error) {
		return nodeStatus("testnet client", e.tn.Client, e.tn.progress, req), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()

	var ids, prefixes []string
	for _, r := range e.tn.Relays {
		id := r.NodeID().String()
		ids = append(ids, id)
		prefixes = append(prefixes, id[:4]+"…")
	}
	secrets := func(t *testing.T, out string) {
		t.Helper()
		if strings.Contains(out, "127.0.0.1") || fullID.MatchString(out) {
			t.Errorf("status leaks an address or a full node ID:\n%s", out)
		}
	}

	out, err := runApp(t, "status", "--data", dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("status:\n%s", out)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^role: +testnet client$`),
		regexp.MustCompile(`(?m)^bootstrap: +100%`),
		regexp.MustCompile(`(?m)^relays known: +5$`),
		regexp.MustCompile(`(?m)^links: +[1-9]`),
		regexp.MustCompile(`(?m)^open circuits: +[1-9]`),
		regexp.MustCompile(`(?m)^  circuit 1: +3 hops,`),
		regexp.MustCompile(`(?m)^guards: +[0-9a-f]{4}…(, [0-9a-f]{4}…){0,2}$`),
		regexp.MustCompile(`(?m)^  memory budget: +65536 cells \(\d+ MiB\)$`),
		regexp.MustCompile(`(?m)^  cells queued: +\d+$`),
	} {
		if !want.MatchString(out) {
			t.Errorf("status lacks %s", want)
		}
	}
	if strings.Contains(out, "path") {
		t.Error("paths shown without --paths")
	}
	secrets(t, out)

	out, err = runApp(t, "status", "--data", dir, "--paths")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`path (\S+) > (\S+) > (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("--paths shows no 3-hop path:\n%s", out)
	}
	for _, h := range m[1:] {
		if !containsString(prefixes, h) {
			t.Errorf("path hop %q is not a relay's redacted ID", h)
		}
	}
	secrets(t, out)

	// The unsafe view does show them: the checks above can fail.
	out, err = runApp(t, "status", "--data", dir, "--paths", "--unsafe-logging", "--json")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "127.0.0.1:") || !containsString(ids, fullID.FindString(out)) {
		t.Errorf("unsafe view without full IDs and addresses:\n%s", out)
	}
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// A relay holds the control socket of its --data: a second node there is
// refused while the first runs, and the socket goes when it stops.
func TestRelayControlSocketInUse(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		app := newApp()
		app.Writer, app.ErrWriter = io.Discard, io.Discard
		done <- app.RunContext(ctx, []string{"darkmatter", "relay", "--listen", "127.0.0.1:0", "--data", dir, "--log-level", "quiet", "--max-links", "77"})
	}()
	// Wait for the relay's socket to answer.
	var st *control.Status
	for deadline := time.Now().Add(20 * time.Second); ; {
		var err error
		if st, err = control.Query(ctx, dir, control.Request{Cmd: control.CmdStatus}); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("relay's control socket never answered: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st.Role != "relay" {
		t.Errorf("role %q", st.Role)
	}
	// The limits in force: the flag's value, and the defaults.
	limits := map[string]string{}
	for _, v := range st.Limits {
		limits[v.Name] = v.Value
	}
	if limits["max links"] != "77" || limits["max circuits per IP"] != "8192" || limits["max circuits"] != "65536" {
		t.Errorf("limits %v", limits)
	}
	_, err := runApp(t, "relay", "--listen", "127.0.0.1:0", "--data", dir, "--log-level", "quiet")
	if err == nil || !strings.Contains(err.Error(), "another running node") {
		t.Fatalf("second relay on the same --data: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := net.Dial("unix", ctl(dir)); err == nil {
		t.Fatal("control socket still answers after the relay stopped")
	}
}

func ctl(dir string) string { return dir + "/" + control.SocketName }

// The status page sums the services a node publishes, names no address,
// and shows the client's counters.
func TestHiddenValues(t *testing.T) {
	v := hiddenValues(overlay.HiddenStats{
		Services: []onion.ServiceStats{{Intros: 3, Published: 2, Streams: 5, Effort: 16}, {Intros: 2, Published: 1, Streams: 1}},
		Client:   onion.ClientStats{Fetched: 4, Rendezvous: 3},
	})
	got := map[string]string{}
	for _, x := range v {
		got[x.Name] = x.Value
	}
	for name, want := range map[string]string{"hidden services published": "2", "introduction points held": "5",
		"descriptors stored": "3", "streams accepted": "6", "puzzle effort asked (highest)": "16",
		"hidden-service descriptors fetched": "4", "hidden-service rendezvous made": "3"} {
		if got[name] != want {
			t.Errorf("%s = %q, want %q", name, got[name], want)
		}
	}
	if v := hiddenValues(overlay.HiddenStats{}); len(v) != 5 {
		t.Fatalf("a node without services shows %d values", len(v))
	}
}
