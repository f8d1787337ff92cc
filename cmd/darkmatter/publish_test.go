package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// --target/--port and --map give one target per virtual port; bad
// entries are refused with the flag named.
func TestPortMap(t *testing.T) {
	m, err := portMap("127.0.0.1:8080", 80, []string{"443=127.0.0.1:8443", "22=[::1]:22"})
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 3 || m[80] != "127.0.0.1:8080" || m[443] != "127.0.0.1:8443" || m[22] != "[::1]:22" {
		t.Fatalf("map %v", m)
	}
	if got := portList(m); got != "22, 80, 443" {
		t.Fatalf("ports %q", got)
	}
	for _, tc := range []struct {
		target string
		port   int
		maps   []string
		want   string
	}{
		{"", 80, nil, "nothing to publish"},
		{"localhost", 80, nil, "--target"},
		{"127.0.0.1:1", 0, nil, "--target: port 0"},
		{"127.0.0.1:1", 80, []string{"80=127.0.0.1:2"}, "mapped twice"},
		{"", 80, []string{"x=127.0.0.1:2"}, "PORT=HOST:PORT"},
		{"", 80, []string{"70000=127.0.0.1:2"}, "out of 1..65535"},
	} {
		if _, err := portMap(tc.target, tc.port, tc.maps); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("portMap(%q, %d, %q) = %v, want %q", tc.target, tc.port, tc.maps, err, tc.want)
		}
	}
}

// A client-auth file lists public keys one per line, with comments; a bad
// line is refused with its number, and an empty list is refused.
func TestLoadClientAuthList(t *testing.T) {
	dir := t.TempDir()
	k1, _ := keys.GenerateClientAuth(nil)
	k2, _ := keys.GenerateClientAuth(nil)
	good := filepath.Join(dir, "clients")
	os.WriteFile(good, []byte("# friends\n"+k1.Public().String()+"\n\n  "+strings.ToUpper(k2.Public().String())+"  \n"), 0o600)
	got, err := loadClientAuthList(good)
	if err != nil || len(got) != 2 || got[0] != k1.Public() || got[1] != k2.Public() {
		t.Fatalf("got %v, %v", got, err)
	}
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte(k1.Public().String()+"\nnot-a-key\n"), 0o600)
	if _, err := loadClientAuthList(bad); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("bad line: %v", err)
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("# nobody\n"), 0o600)
	if _, err := loadClientAuthList(empty); err == nil {
		t.Fatal("an empty list was accepted")
	}
}
