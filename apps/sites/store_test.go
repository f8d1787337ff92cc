package sites

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func openStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "blobs")
	s := openStore(t, dir)
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("dir: %v, %v", st.Mode(), err)
	}
	content := []byte("hello, site")
	hash, err := s.Put(content)
	if err != nil || hash != sha256.Sum256(content) {
		t.Fatalf("Put = %x, %v", hash, err)
	}
	name := filepath.Join(dir, hex.EncodeToString(hash[:]))
	if st, err := os.Stat(name); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("blob file: %v, %v", st.Mode(), err)
	}
	if !s.Has(hash) {
		t.Fatal("Has = false")
	}
	if got, err := s.Get(hash); err != nil || !bytes.Equal(got, content) {
		t.Fatalf("Get = %q, %v", got, err)
	}
	empty, err := s.Put(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(empty); err != nil || len(got) != 0 {
		t.Fatalf("empty blob: %q, %v", got, err)
	}
	if n := s.Size(); n != int64(len(content)) {
		t.Fatalf("Size = %d", n)
	}
	// Put again is harmless.
	if _, err := s.Put(content); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(hash); err != nil {
		t.Fatal(err)
	}
	if s.Has(hash) {
		t.Fatal("Has after Remove")
	}
	if _, err := s.Get(hash); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Get after Remove: %v", err)
	}
	if err := s.Remove(hash); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
	// No temporary file is left.
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !isBlobName(e.Name()) {
			t.Errorf("left %q", e.Name())
		}
	}
}

// Get returns what is on disk, unverified: a host serving a tampered blob
// is what clients' checks are for.
func TestStoreGetDoesNotVerify(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	hash, _ := s.Put([]byte("original"))
	if err := os.WriteFile(filepath.Join(dir, hex.EncodeToString(hash[:])), []byte("tampered"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(hash); err != nil || string(got) != "tampered" {
		t.Fatalf("Get = %q, %v", got, err)
	}
}

// Nothing reaches outside the directory: a symbolic link planted under a
// blob's name to a file outside is not followed.
func TestStoreConfined(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "store")
	s := openStore(t, dir)
	secret := []byte("outside")
	if err := os.WriteFile(filepath.Join(base, "secret"), secret, 0o600); err != nil {
		t.Fatal(err)
	}
	hash := sha256.Sum256(secret)
	if err := os.Symlink(filepath.Join(base, "secret"), filepath.Join(dir, hex.EncodeToString(hash[:]))); err != nil {
		t.Skip(err)
	}
	if got, err := s.Get(hash); err == nil {
		t.Fatalf("read %q through a link out of the store", got)
	}
	if s.Has(hash) {
		t.Fatal("Has follows a link out of the store")
	}
}

func TestOpenStoreRemovesTemporaries(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, tempPrefix+"crashed")
	if err := os.WriteFile(tmp, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	openStore(t, dir)
	if _, err := os.Stat(tmp); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("temporary kept: %v", err)
	}
}

func TestParseHash(t *testing.T) {
	h := sha256.Sum256([]byte("x"))
	s := hex.EncodeToString(h[:])
	if got, ok := parseHash(s); !ok || got != h {
		t.Fatal("lowercase hex refused")
	}
	for _, bad := range []string{"", s[:63], s + "0", "A" + s[1:], "g" + s[1:], "../" + s[3:]} {
		if _, ok := parseHash(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}
