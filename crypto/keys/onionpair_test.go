package keys

import (
	"bytes"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testPair(t testing.TB, b byte, created time.Time) OnionPair {
	t.Helper()
	p, err := GenerateOnionPair(bytes.NewReader(bytes.Repeat([]byte{b}, 96)), created)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Rotate keeps one previous pair, erasing an older one; Retire erases it;
// UseOnionKeys gives the current pair first.
func TestOnionKeyring(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	a, b, c := testPair(t, 1, t0), testPair(t, 2, t0.Add(time.Hour)), testPair(t, 3, t0.Add(2*time.Hour))
	r := NewOnionKeyring(a)
	pairs := func() []OnionPublicKey {
		var out []OnionPublicKey
		r.UseOnionKeys(func(ps []OnionPair) {
			for _, p := range ps {
				out = append(out, p.Onion.Public())
			}
		})
		return out
	}
	if got := pairs(); len(got) != 1 || got[0] != a.Onion.Public() {
		t.Fatal("new keyring: want the current pair only")
	}
	aPub := a.Onion.Public()
	r.Rotate(b)
	if got := pairs(); len(got) != 2 || got[0] != b.Onion.Public() || got[1] != aPub {
		t.Fatal("after a rotation: want current, previous")
	}
	r.Rotate(c)
	if !a.Onion.Erased() || !a.KEM.Erased() || a.Onion.Bytes() != [32]byte{} || a.KEM.Seed() != [KEMSeedSize]byte{} {
		t.Fatal("a pair two rotations old is not zeroed")
	}
	if b.Onion.Erased() {
		t.Fatal("previous pair erased by the rotation")
	}
	r.Retire()
	if !b.Onion.Erased() || !b.KEM.Erased() || b.KEM.Seed() != [KEMSeedSize]byte{} {
		t.Fatal("retired pair not zeroed")
	}
	if _, ok := r.Previous(); ok || len(pairs()) != 1 {
		t.Fatal("a previous pair after Retire")
	}
}

// An onion keys file round-trips the current and previous pairs with
// their creation times (to the second), mode 0600.
func TestOnionKeysFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), OnionKeysFileName)
	if _, _, err := LoadOnionKeysFile(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v, want fs.ErrNotExist", err)
	}
	t0 := time.Unix(1_700_000_000, 0)
	cur, prev := testPair(t, 7, t0.Add(7*24*time.Hour)), testPair(t, 8, t0)
	for _, withPrev := range []bool{false, true} {
		var p *OnionPair
		if withPrev {
			p = &prev
		}
		if err := WriteOnionKeysFile(path, cur, p); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != FileMode {
			t.Fatalf("mode %v, %v", fi.Mode(), err)
		}
		gc, gp, err := LoadOnionKeysFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if gc.Onion.Bytes() != cur.Onion.Bytes() || gc.KEM.Seed() != cur.KEM.Seed() || !gc.Created.Equal(cur.Created) {
			t.Fatal("current pair changed")
		}
		if (gp != nil) != withPrev {
			t.Fatalf("previous pair %v, want %v", gp != nil, withPrev)
		}
		if withPrev && (gp.Onion.Bytes() != prev.Onion.Bytes() || gp.KEM.Seed() != prev.KEM.Seed() || !gp.Created.Equal(prev.Created)) {
			t.Fatal("previous pair changed")
		}
	}
}

// An onion keys file is refused like any key file (too open, wrong block)
// and when its pairs make no sense.
func TestOnionKeysFileRefusals(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Unix(1_700_000_000, 0)
	cur := testPair(t, 7, t0)
	write := func(name string, data []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	newerPrev := testPair(t, 9, t0.Add(time.Hour))
	cases := []struct {
		name, want string
		data       []byte
		mode       os.FileMode
	}{
		{"open", "too open", EncodeOnionKeysFile(cur, nil), 0o644},
		{"type", "not onion keys", EncodeKeyFile(cur.Onion), 0o600},
		{"nocur", "no current pair", make([]byte, 0), 0o600},
		{"order", "not older", EncodeOnionKeysFile(cur, &newerPrev), 0o600},
	}
	cases[2].data = pem.EncodeToMemory(&pem.Block{Type: OnionKeysType, Bytes: make([]byte, 2*onionPairRecordSize)})
	for _, c := range cases {
		_, _, err := LoadOnionKeysFile(write(c.name, c.data, c.mode))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
}

// FuzzParseOnionKeys checks that the onion keys body parser never panics
// and that what it accepts re-encodes to the same body.
func FuzzParseOnionKeys(f *testing.F) {
	t0 := time.Unix(1_700_000_000, 0)
	cur, prev := testPair(f, 1, t0.Add(time.Hour)), testPair(f, 2, t0)
	for _, p := range []*OnionPair{nil, &prev} {
		body := appendPairRecord(nil, cur)
		if p != nil {
			body = appendPairRecord(body, *p)
		} else {
			body = append(body, make([]byte, onionPairRecordSize)...)
		}
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		c, p, err := parseOnionKeys(body)
		if err != nil {
			return
		}
		again := appendPairRecord(nil, c)
		if p != nil {
			again = appendPairRecord(again, *p)
		} else {
			again = append(again, make([]byte, onionPairRecordSize)...)
		}
		if !bytes.Equal(again, body) {
			t.Fatal("re-encoding changed the body")
		}
	})
}
