package keys

import (
	"bytes"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// allKeys returns one key of every role, with its PEM type.
func allKeys(t *testing.T) []PrivateKey {
	t.Helper()
	n, err := GenerateNodeKeys(testRand(20))
	if err != nil {
		t.Fatal(err)
	}
	s, err := GenerateService(testRand(21))
	if err != nil {
		t.Fatal(err)
	}
	return []PrivateKey{n.Identity, n.Link, n.Onion, n.KEM, s}
}

// load dispatches to the Load*File function for the key's type and returns
// the loaded key's file encoding.
func load(path string, like PrivateKey) ([]byte, error) {
	var k PrivateKey
	var err error
	switch like.(type) {
	case *IdentityPrivateKey:
		k, err = LoadIdentityFile(path)
	case *LinkPrivateKey:
		k, err = LoadLinkFile(path)
	case *OnionPrivateKey:
		k, err = LoadOnionFile(path)
	case *KEMPrivateKey:
		k, err = LoadKEMFile(path)
	case *ServicePrivateKey:
		k, err = LoadServiceFile(path)
	}
	if err != nil {
		return nil, err
	}
	return EncodeKeyFile(k), nil
}

func TestKeyFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, k := range allKeys(t) {
		typ, seed := k.keyFileBlock()
		path := filepath.Join(dir, strings.ReplaceAll(strings.ToLower(typ), " ", "_"))
		if err := WriteFile(path, k); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		block, rest := pem.Decode(data)
		if block == nil || block.Type != typ || !bytes.Equal(block.Bytes, seed) || len(rest) != 0 || len(block.Headers) != 0 {
			t.Fatalf("%s: file is not one PEM block holding the seed:\n%s", typ, data)
		}
		got, err := load(path, k)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("%s: loaded key differs", typ)
		}
		// Overwriting works and leaves no temporary files behind.
		if err := WriteFile(path, k); err != nil {
			t.Fatal(err)
		}
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
	// The loaded keys behave like the originals.
	n, _ := GenerateNodeKeys(testRand(20))
	id, err := LoadIdentityFile(filepath.Join(dir, "darkmatter_identity_key"))
	if err != nil || id.Public() != n.Identity.Public() {
		t.Fatal("identity key changed in the round trip")
	}
	kem, err := LoadKEMFile(filepath.Join(dir, "darkmatter_kem_key"))
	if err != nil || *kem.Public() != *n.KEM.Public() {
		t.Fatal("KEM key changed in the round trip")
	}
}

func TestWriteFileMode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "id.key")
	// A pre-existing, too-open file is replaced by a 0600 one.
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, IdentityFromSeed([32]byte{1})); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %04o, want 0600", fi.Mode().Perm())
	}
	if err := WriteFile(filepath.Join(dir, "missing", "id.key"), IdentityFromSeed([32]byte{1})); err == nil {
		t.Fatal("WriteFile into a missing directory succeeded")
	}
	if err := WriteFile(filepath.Join(dir, "nil.key"), nil); err == nil {
		t.Fatal("WriteFile(nil) succeeded")
	}
}

func TestLoadRefusals(t *testing.T) {
	dir := t.TempDir()
	id := IdentityFromSeed([32]byte{9})
	good := EncodeKeyFile(id)
	link := EncodeKeyFile(LinkFromBytes([32]byte{9}))
	pemOf := func(typ string, body []byte, headers map[string]string) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: body, Headers: headers})
	}
	tests := []struct {
		name string
		data []byte
		perm os.FileMode
		want string // substring of the error
	}{
		{"group readable", good, 0o640, "permissions 0640 for"},
		{"world readable", good, 0o644, "permissions 0644 for"},
		{"world writable", good, 0o602, "permissions 0602 for"},
		{"empty", nil, 0o600, "not a PEM key file"},
		{"not PEM", []byte("hello\n"), 0o600, "not a PEM key file"},
		{"garbage before", append([]byte("x\n"), good...), 0o600, "not a PEM key file"},
		{"broken PEM", good[:len(good)-10], 0o600, "not a PEM key file"},
		{"wrong role", link, 0o600, "holds a DARKMATTER LINK KEY, not an identity key"},
		{"foreign block", pemOf("PRIVATE KEY", make([]byte, 32), nil), 0o600, `holds a "PRIVATE KEY" PEM block, not an identity key`},
		{"short", pemOf(IdentityKeyType, make([]byte, 31), nil), 0o600, "is 31 bytes, want 32"},
		{"long", pemOf(IdentityKeyType, make([]byte, 64), nil), 0o600, "is 64 bytes, want 32"},
		{"headers", pemOf(IdentityKeyType, make([]byte, 32), map[string]string{"Proc-Type": "4,ENCRYPTED"}), 0o600, "PEM headers"},
		{"trailing block", append(append([]byte{}, good...), good...), 0o600, "trailing data"},
		{"trailing text", append(append([]byte{}, good...), "junk"...), 0o600, "trailing data"},
		{"huge", bytes.Repeat([]byte{' '}, maxKeyFileSize+1), 0o600, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if runtime.GOOS == "windows" && tt.perm != 0o600 {
				t.Skip("no Unix permissions")
			}
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".key")
			if err := os.WriteFile(path, tt.data, tt.perm); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.perm); err != nil { // umask may have narrowed it
				t.Fatal(err)
			}
			_, err := LoadIdentityFile(path)
			if err == nil {
				t.Fatal("loaded")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "keys: ") || !strings.Contains(msg, path) || !strings.Contains(msg, tt.want) {
				t.Fatalf("error %q: want a keys: error naming %s and containing %q", msg, path, tt.want)
			}
			if tt.perm != 0o600 && !errors.Is(err, ErrPermissions) {
				t.Fatalf("error %v does not match ErrPermissions", err)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		path := filepath.Join(dir, "nope.key")
		_, err := LoadIdentityFile(path)
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) || !strings.HasPrefix(err.Error(), "keys: ") {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		path := filepath.Join(dir, "adir")
		os.Mkdir(path, 0o700)
		_, err := LoadIdentityFile(path)
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("unreadable", func(t *testing.T) {
		if runtime.GOOS == "windows" || os.Geteuid() == 0 {
			t.Skip("root (or Windows) can read a 0000 file")
		}
		path := filepath.Join(dir, "unreadable.key")
		os.WriteFile(path, good, 0o000)
		_, err := LoadIdentityFile(path)
		if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), path) {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("white space around the block is fine", func(t *testing.T) {
		path := filepath.Join(dir, "spaced.key")
		data := append(append([]byte("\n  \r\n"), good...), "\n\n"...)
		os.WriteFile(path, data, 0o600)
		k, err := LoadIdentityFile(path)
		if err != nil || k.Public() != id.Public() {
			t.Fatalf("LoadIdentityFile = %v", err)
		}
	})
	t.Run("every loader checks its type", func(t *testing.T) {
		for _, k := range allKeys(t) {
			for _, other := range allKeys(t) {
				typ, _ := k.keyFileBlock()
				otherTyp, _ := other.keyFileBlock()
				path := filepath.Join(dir, "cross.key")
				if err := WriteFile(path, k); err != nil {
					t.Fatal(err)
				}
				_, err := load(path, other)
				if (err == nil) != (typ == otherTyp) {
					t.Errorf("loading a %s as a %s: error = %v", typ, otherTyp, err)
				}
				if err != nil && !strings.Contains(err.Error(), "holds a "+typ+", not ") {
					t.Errorf("error %q does not name the held type", err)
				}
			}
		}
	})
}

func TestLoadOrGenerateNodeKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "keys")
	n, err := LoadOrGenerateNodeKeys(dir, testRand(30))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := GenerateNodeKeys(testRand(30))
	if n.Identity.Public() != want.Identity.Public() || n.Link.Public() != want.Link.Public() ||
		n.Onion.Public() != want.Onion.Public() || *n.KEM.Public() != *want.KEM.Public() {
		t.Fatal("generated keys differ from GenerateNodeKeys with the same reader")
	}
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(dir)
		if err != nil || fi.Mode().Perm() != 0o700 {
			t.Fatalf("key directory mode = %v, %v; want 0700", fi.Mode().Perm(), err)
		}
		for _, name := range []string{IdentityFileName, LinkFileName, OnionFileName, KEMFileName} {
			fi, err := os.Stat(filepath.Join(dir, name))
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("%s: mode %v, %v; want 0600", name, fi.Mode().Perm(), err)
			}
		}
	}
	// Loading again gives the same keys and reads no randomness.
	again, err := LoadOrGenerateNodeKeys(dir, bytes.NewReader(nil))
	if err != nil {
		t.Fatal(err)
	}
	if again.Identity.Public() != n.Identity.Public() || again.Link.Public() != n.Link.Public() ||
		again.Onion.Public() != n.Onion.Public() || *again.KEM.Public() != *n.KEM.Public() {
		t.Fatal("reloaded keys differ")
	}
	// A missing key is regenerated; the others are kept.
	os.Remove(filepath.Join(dir, OnionFileName))
	third, err := LoadOrGenerateNodeKeys(dir, testRand(31))
	if err != nil {
		t.Fatal(err)
	}
	if third.Identity.Public() != n.Identity.Public() || third.Onion.Public() == n.Onion.Public() || *third.KEM.Public() != *n.KEM.Public() {
		t.Fatal("regeneration of one missing key went wrong")
	}
	if _, err := LoadOrGenerateNodeKeys(filepath.Join(t.TempDir(), "x"), bytes.NewReader(make([]byte, 40))); err == nil {
		t.Fatal("generation with a short reader succeeded")
	}
}

func TestLoadOrGenerateRefusesMalformed(t *testing.T) {
	for _, name := range []string{IdentityFileName, LinkFileName, OnionFileName, KEMFileName} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := LoadOrGenerateNodeKeys(dir, testRand(40)); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, name)
			bad := []byte("not a key\n")
			if err := os.WriteFile(path, bad, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadOrGenerateNodeKeys(dir, testRand(41))
			if err == nil || !strings.Contains(err.Error(), path) {
				t.Fatalf("error = %v, want one naming %s", err, path)
			}
			if data, _ := os.ReadFile(path); !bytes.Equal(data, bad) {
				t.Fatal("malformed key file was overwritten")
			}
		})
	}
	t.Run("too open", func(t *testing.T) {
		if runtime.GOOS == "windows" {
			t.Skip("no Unix permissions")
		}
		dir := t.TempDir()
		LoadOrGenerateNodeKeys(dir, testRand(40))
		os.Chmod(filepath.Join(dir, LinkFileName), 0o644)
		if _, err := LoadOrGenerateNodeKeys(dir, testRand(41)); !errors.Is(err, ErrPermissions) {
			t.Fatalf("error = %v, want ErrPermissions", err)
		}
	})
	t.Run("directory is a file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "file")
		os.WriteFile(path, nil, 0o600)
		if _, err := LoadOrGenerateNodeKeys(path, testRand(40)); err == nil {
			t.Fatal("used a file as the key directory")
		}
	})
}
