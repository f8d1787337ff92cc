package manifest

import (
	"bytes"
	"testing"
)

func FuzzParseManifest(f *testing.F) {
	good, _ := testManifest().Sign(testNet, testKey(1))
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			if m != nil {
				t.Fatal("a manifest with an error")
			}
			return
		}
		// Whatever parses re-encodes to the same bytes and answers Verify
		// without panicking.
		again, err := m.Marshal()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-marshal: %v", err)
		}
		_ = m.Verify(testNet)
		_ = m.CheckCode(b)
	})
}

func FuzzParseBlobManifest(f *testing.F) {
	for _, n := range []int{0, 1, ChunkSize + 1, 3 * ChunkSize} {
		mb, _, _, _ := Split(pattern(n))
		f.Add(mb, []byte("chunk"))
	}
	f.Fuzz(func(t *testing.T, b []byte, chunk []byte) {
		bm, err := ParseBlobManifest(b)
		if err != nil {
			return
		}
		if !bytes.Equal(bm.Marshal(), b) {
			t.Fatal("re-marshal differs")
		}
		// A getter that answers every key with the fuzzed chunk: Assemble
		// either returns exactly the content the manifest names or fails.
		out, err := bm.Assemble(func([32]byte) ([]byte, error) { return chunk, nil })
		if err == nil {
			if uint64(len(out)) != bm.Size || ModuleHash(out) != bm.Hash {
				t.Fatal("Assemble returned unverified bytes")
			}
		} else if out != nil {
			t.Fatal("bytes with an error")
		}
	})
}
