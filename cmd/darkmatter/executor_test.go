package main

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

func TestLoadAuthors(t *testing.T) {
	a, _ := keys.GenerateIdentity(nil)
	b, _ := keys.GenerateIdentity(nil)
	pa, pb := a.Public(), b.Public()
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "authors")
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	got, err := loadAuthors(write("# ours\n" + hexKey(pa) + "\n\n  " + hexKey(pb) + "  \n"))
	if err != nil || len(got) != 2 || got[0] != pa || got[1] != pb {
		t.Fatalf("loadAuthors = %v, %v", got, err)
	}
	for s, want := range map[string]string{
		hexKey(pa) + "\nnot-a-key\n": "line 2",
		"# nothing\n":                "no author key",
		hexKey(pa)[:62] + "\n":       "64 hex digits",
	} {
		if _, err := loadAuthors(write(s)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("loadAuthors(%q): %v, want an error with %q", s, err, want)
		}
	}
}

func hexKey(k keys.IdentityPublicKey) string { return hex.EncodeToString(k[:]) }

// Executor flags are refused without --executor, and out of range, before
// the relay starts.
func TestRelayExecutorFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--executor-capacity", "3"}, "--executor-capacity needs --executor"},
		{[]string{"--subcall-hops", "2"}, "--subcall-hops needs --executor"},
		{[]string{"--executor", "--subcall-hops", "4"}, "--subcall-hops must be 1, 2 or 3"},
		{[]string{"--executor", "--executor-capacity", "0"}, "--executor-capacity must be"},
		{[]string{"--executor", "--executor-memory-mb", "0"}, "--executor-memory-mb must be"},
		{[]string{"--executor", "--executor-authors", "/nonexistent"}, "--executor-authors"},
		{[]string{"--dht-request-rate", "0"}, "must be positive"},
	} {
		args := append([]string{"relay", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--log-level", "quiet"}, c.args...)
		_, err := runApp(t, args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want an error with %q", c.args, err, c.want)
		}
	}
}
