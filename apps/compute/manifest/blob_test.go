package manifest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// store is a fake block store for Assemble.
type store map[[32]byte][]byte

func (s store) get(k [32]byte) ([]byte, error) {
	c, ok := s[k]
	if !ok {
		return nil, errors.New("not found")
	}
	return c, nil
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func split(t testing.TB, content []byte) (*BlobManifest, store) {
	t.Helper()
	mb, chunks, hash, err := Split(content)
	if err != nil {
		t.Fatal(err)
	}
	if hash != sha256.Sum256(content) {
		t.Fatal("Split's hash is not the content's SHA-256")
	}
	bm, err := ParseBlobManifest(mb)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bm.Marshal(), mb) {
		t.Fatal("blob manifest does not re-marshal to the same bytes")
	}
	s := store{}
	for _, c := range chunks {
		s[BlockKey(c)] = c
	}
	return bm, s
}

func TestSplitAssembleRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, ChunkSize - 1, ChunkSize, ChunkSize + 1, 1 << 20, MaxBlobSize} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			content := pattern(n)
			mb, chunks, _, err := Split(content)
			if err != nil {
				t.Fatal(err)
			}
			if want := (n + ChunkSize - 1) / ChunkSize; len(chunks) != want {
				t.Fatalf("%d chunks, want %d", len(chunks), want)
			}
			for i, c := range chunks {
				if len(c) > ChunkSize || len(c) == 0 || (i < len(chunks)-1 && len(c) != ChunkSize) {
					t.Fatalf("chunk %d has %d bytes", i, len(c))
				}
			}
			if len(mb) > ChunkSize {
				t.Fatalf("blob manifest of %d bytes exceeds a chunk", len(mb))
			}
			bm, s := split(t, content)
			got, err := bm.Assemble(s.get)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, content) {
				t.Fatal("assembled content differs")
			}
		})
	}
}

func TestModuleBlobHash(t *testing.T) {
	_, _, h, _ := Split(testCode)
	if h != ModuleHash(testCode) {
		t.Fatal("a module's blob hash is not its module hash")
	}
}

func TestSplitRefusesOversize(t *testing.T) {
	_, _, _, err := Split(make([]byte, MaxBlobSize+1))
	if err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("got %v", err)
	}
}

func TestAssembleRefusesBadChunks(t *testing.T) {
	content := pattern(3*ChunkSize + 100)
	bm, s := split(t, content)
	k := bm.Chunks
	cases := []struct {
		name string
		get  func([32]byte) ([]byte, error)
		want string
	}{
		{"missing", func(key [32]byte) ([]byte, error) {
			if key == k[2] {
				return nil, errors.New("not found")
			}
			return s.get(key)
		}, "chunk 2 of 4"},
		{"swapped", func(key [32]byte) ([]byte, error) {
			switch key {
			case k[0]:
				return s[k[1]], nil
			case k[1]:
				return s[k[0]], nil
			}
			return s.get(key)
		}, "chunk 0 of 4"},
		{"corrupted", func(key [32]byte) ([]byte, error) {
			c, err := s.get(key)
			if key == k[1] {
				c = bytes.Clone(c)
				c[100] ^= 1
			}
			return c, err
		}, "chunk 1 of 4"},
		{"short last", func(key [32]byte) ([]byte, error) {
			c, err := s.get(key)
			if key == k[3] {
				c = c[:50]
			}
			return c, err
		}, "chunk 3 of 4"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := bm.Assemble(c.get)
			if err == nil || got != nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %d bytes, %v; want an error naming %q", len(got), err, c.want)
			}
		})
	}
	// A manifest whose chunks are genuine but whose content hash lies.
	lie := *bm
	lie.Hash[0] ^= 1
	if got, err := lie.Assemble(s.get); err == nil || got != nil || !strings.Contains(err.Error(), "does not match its hash") {
		t.Fatalf("wrong content hash: got %v", err)
	}
	// An inconsistent in-memory manifest.
	inc := *bm
	inc.Chunks = inc.Chunks[:2]
	if _, err := inc.Assemble(s.get); err == nil || !strings.Contains(err.Error(), "inconsistent") {
		t.Fatalf("inconsistent manifest: got %v", err)
	}
}

func TestParseBlobManifestRefuses(t *testing.T) {
	mb, _, _, _ := Split(pattern(2*ChunkSize + 1))
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(mb)) }
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "shorter than its"},
		{"header only", mb[:blobHeader-1], "shorter than its"},
		{"version", edit(func(b []byte) []byte { b[0] = 2; return b }), "version 2"},
		{"huge", edit(func(b []byte) []byte { binary.BigEndian.PutUint64(b[1:], MaxBlobSize+1); return b }), "exceeds"},
		{"size 2^64-1", edit(func(b []byte) []byte { binary.BigEndian.PutUint64(b[1:], ^uint64(0)); return b }), "exceeds"},
		{"count too low", edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[41:], 2); return b }), "2 chunks for"},
		{"count too high", edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[41:], 4); return b }), "4 chunks for"},
		{"truncated", mb[:len(mb)-1], "bytes of chunk keys"},
		{"trailing", append(bytes.Clone(mb), 0), "bytes of chunk keys"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseBlobManifest(c.b)
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want ErrMalformed containing %q", err, c.want)
			}
		})
	}
	if MaxBlobManifestSize > ChunkSize {
		t.Fatalf("largest blob manifest (%d) does not fit a chunk", MaxBlobManifestSize)
	}
}
