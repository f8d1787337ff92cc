package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// startNameRelays starts n relay processes at the name difficulty of
// nameFlags (the second one an exit that accepts only 127.0.0.1:9, for
// the clients' first circuit), waits until they know each other and
// returns the first one's bootstrap string.
func startNameRelays(t *testing.T, bin, dir string, n int) string {
	t.Helper()
	var relays []*computeRelay
	boot := ""
	for i := 1; i <= n; i++ {
		r := &computeRelay{name: fmt.Sprintf("relay%d", i)}
		r.data = filepath.Join(dir, r.name)
		args := append([]string{"--data", r.data, "--gossip-interval", "300ms"}, hsNetFlags...)
		args = append(append(args, computeDHTFlags...), nameFlags...)
		if i > 1 {
			args = append(args, "--bootstrap", boot)
		}
		if i == 2 {
			args = append(args, "--exit", "--exit-policy", "accept 127.0.0.1:9,reject *:*")
		}
		r.p, r.boot = startRelay(t, bin, r.name, args...)
		if boot == "" {
			boot = r.boot
		}
		relays = append(relays, r)
	}
	waitKnowAll(t, relays)
	return boot
}

// nameFlags set the name difficulty of the process tests'
// networks: every node must be given the same.
var nameFlags = []string{"--name-difficulty", "8"}

var reRegistered = regexp.MustCompile(`^registered alice until \S+\n$`)

// name register stores a name that name resolve prints from another
// client process; a second key's register fails non-zero with the reason,
// and the name still resolves to the first owner's entries.
func TestProcessNameRegisterResolve(t *testing.T) {
	bin := darkmatterBinary(t)
	dir := t.TempDir()
	boot := startNameRelays(t, bin, dir, 4)
	cl := &dmClient{bin: bin, boot: boot, data: filepath.Join(dir, "client")}
	other := &dmClient{bin: bin, boot: boot, data: filepath.Join(dir, "client2")}
	if err := os.Mkdir(filepath.Join(dir, "k2"), 0o700); err != nil {
		t.Fatal(err)
	}
	k1, k2 := newAuthorKey(t, bin, dir), newAuthorKey(t, bin, filepath.Join(dir, "k2"))
	target := keys.ServiceFromSeed([32]byte{7}).Public().Address()

	out := cl.mustRun(t, "name register", append([]string{"name", "register", "Alice", "--key", k1, "--target", target, "--text", "hello"}, nameFlags...)...)
	if !reRegistered.MatchString(out) {
		t.Fatalf("name register printed %q", out)
	}
	want := "address " + target + "\ntext \"hello\"\n"
	if got := other.mustRun(t, "name resolve", append([]string{"name", "resolve", "alice"}, nameFlags...)...); got != want {
		t.Fatalf("name resolve printed %q, want %q", got, want)
	}

	_, errOut, err := other.run(t, "name register (second key)", append([]string{"name", "register", "alice", "--key", k2, "--text", "mine"}, nameFlags...)...)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() <= 0 {
		t.Fatalf("second key: exit %v, want a non-zero status\n%s", err, errOut)
	}
	if !strings.Contains(errOut, "registered to another key") {
		t.Fatalf("second key's register says\n%s\nwant the reason", errOut)
	}
	t.Logf("refused: %s", lastLine(errOut))
	if got := cl.mustRun(t, "name resolve (after)", append([]string{"name", "resolve", "alice"}, nameFlags...)...); got != want {
		t.Fatalf("after the second key, name resolve printed %q, want %q", got, want)
	}

	_, errOut, err = cl.run(t, "name resolve (unknown)", append([]string{"name", "resolve", "nobody"}, nameFlags...)...)
	if err == nil || !strings.Contains(errOut, "no valid record") {
		t.Fatalf("unknown name: %v\n%s", err, errOut)
	}
}

// name register refuses bad flags before it bootstraps; a relay refuses
// a name difficulty out of range.
func TestNameFlagErrors(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "k")
	if err := createKeyFile(key, keys.EncodeKeyFile(keys.IdentityFromSeed([32]byte{1}))); err != nil {
		t.Fatal(err)
	}
	boot := []string{"--bootstrap", "0000000000000000000000000000000000000000000000000000000000000000@127.0.0.1:9", "--data", dir, "--log-level", "quiet"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"name", "register", "alice", "--key", key}, "give at least one of"},
		{[]string{"name", "register", "al ice", "--key", key, "--text", "x"}, "invalid name"},
		{[]string{"name", "register", "alice", "--key", key, "--target", "abc.dark"}, "--target"},
		{[]string{"name", "register", "alice", "--key", key, "--module", "12"}, "--module"},
		{[]string{"name", "register", "alice", "--key", key, "--text", strings.Repeat("x", 256)}, "at most 255"},
		{[]string{"name", "register", "alice", "--key", key, "--text", "x", "--ttl", "800h"}, "--ttl"},
		{[]string{"name", "register", "alice", "--key", filepath.Join(dir, "none"), "--text", "x"}, "--key"},
		{[]string{"name", "resolve", "alice", "--name-difficulty", "0"}, "--name-difficulty must be"},
		{[]string{"name", "resolve"}, "usage"},
		{[]string{"name", "resolve", "alice", "--petnames", filepath.Join(dir, "none")}, "--petnames"},
		{[]string{"site", "publish", dir, "--key", key, "--handler", "/x=12"}, "--handler"},
		{[]string{"site", "publish", "--key", key}, "usage"},
		{[]string{"site", "host", "abc.dark"}, "site 1"},
	} {
		args := interspersed(newApp(), append(append([]string{"darkmatter"}, c.args...), boot...))
		_, err := runApp(t, args[1:]...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want an error with %q", c.args, err, c.want)
		}
	}
	_, err := runApp(t, "relay", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--log-level", "quiet", "--name-difficulty", "41")
	if err == nil || !strings.Contains(err.Error(), "--name-difficulty must be") {
		t.Errorf("relay --name-difficulty 41: %v", err)
	}
}
