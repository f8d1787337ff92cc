package manifest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// Blob layout limits (spec/compute.md §2).
const (
	// BlobVersion is the only blob manifest version.
	BlobVersion = 1
	// ChunkSize is the largest chunk; every chunk but the last is this size.
	ChunkSize = 16000
	// BlockContext starts the hash input of a chunk's key.
	BlockContext = "darkmatter block\x00"
	// blobHeader is version (1) ‖ total size (8) ‖ content hash (32) ‖ chunk count (4).
	blobHeader = 1 + 8 + 32 + 4
	// MaxChunks is how many chunk keys fit in one ChunkSize blob manifest.
	MaxChunks = (ChunkSize - blobHeader) / 32 // 498
	// MaxBlobSize is the largest blob, 7968000 bytes.
	MaxBlobSize = MaxChunks * ChunkSize
	// MaxBlobManifestSize is the largest blob manifest (15981 bytes).
	MaxBlobManifestSize = blobHeader + MaxChunks*32
)

// BlobManifest lists a blob's chunks.
type BlobManifest struct {
	Size   uint64     // content bytes
	Hash   [32]byte   // SHA-256 of the content
	Chunks [][32]byte // BlockKey of each chunk, in order
}

// BlockKey returns the content address of a chunk:
// SHA-256(BlockContext ‖ chunk).
func BlockKey(chunk []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(BlockContext))
	h.Write(chunk)
	return [32]byte(h.Sum(nil))
}

// chunkCount is how many chunks a blob of size bytes has.
func chunkCount(size uint64) uint64 { return (size + ChunkSize - 1) / ChunkSize }

// Split cuts content into chunks of ChunkSize bytes (the last one shorter,
// none for empty content) and returns the encoded blob manifest, the chunks
// (sub-slices of content), and the content's SHA-256. It refuses content
// over MaxBlobSize.
func Split(content []byte) (manifest []byte, chunks [][]byte, hash [32]byte, err error) {
	if len(content) > MaxBlobSize {
		return nil, nil, hash, fmt.Errorf("manifest: blob of %d bytes exceeds %d", len(content), MaxBlobSize)
	}
	bm := &BlobManifest{Size: uint64(len(content)), Hash: sha256.Sum256(content)}
	for p := 0; p < len(content); p += ChunkSize {
		c := content[p:min(p+ChunkSize, len(content))]
		chunks = append(chunks, c)
		bm.Chunks = append(bm.Chunks, BlockKey(c))
	}
	return bm.Marshal(), chunks, bm.Hash, nil
}

// Marshal returns the encoded blob manifest. The caller keeps it consistent
// (Split does); ParseBlobManifest checks it.
func (bm *BlobManifest) Marshal() []byte {
	b := make([]byte, 0, blobHeader+32*len(bm.Chunks))
	b = append(b, BlobVersion)
	b = binary.BigEndian.AppendUint64(b, bm.Size)
	b = append(b, bm.Hash[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(bm.Chunks)))
	for _, k := range bm.Chunks {
		b = append(b, k[:]...)
	}
	return b
}

// ParseBlobManifest decodes a blob manifest. It checks the layout: the
// version, a size of at most MaxBlobSize, a chunk count equal to
// ceil(size / ChunkSize), and no bytes missing or trailing.
func ParseBlobManifest(b []byte) (*BlobManifest, error) {
	if len(b) < blobHeader {
		return nil, fmt.Errorf("%w: blob manifest of %d bytes, shorter than its %d-byte header", ErrMalformed, len(b), blobHeader)
	}
	if b[0] != BlobVersion {
		return nil, fmt.Errorf("%w: blob manifest version %d, want %d", ErrMalformed, b[0], BlobVersion)
	}
	bm := &BlobManifest{Size: binary.BigEndian.Uint64(b[1:9])}
	if bm.Size > MaxBlobSize {
		return nil, fmt.Errorf("%w: blob size %d exceeds %d", ErrMalformed, bm.Size, MaxBlobSize)
	}
	copy(bm.Hash[:], b[9:41])
	n := uint64(binary.BigEndian.Uint32(b[41:45]))
	if want := chunkCount(bm.Size); n != want {
		return nil, fmt.Errorf("%w: %d chunks for %d bytes, want %d", ErrMalformed, n, bm.Size, want)
	}
	if got, want := uint64(len(b)-blobHeader), n*32; got != want {
		return nil, fmt.Errorf("%w: %d bytes of chunk keys, want %d", ErrMalformed, got, want)
	}
	bm.Chunks = make([][32]byte, n)
	for i := range bm.Chunks {
		copy(bm.Chunks[i][:], b[blobHeader+32*i:])
	}
	return bm, nil
}

// Assemble fetches every chunk with get and returns the content. It checks
// each chunk's length and key, then the content's size and hash, and
// returns no bytes unless all hold; an error names the chunk at fault.
func (bm *BlobManifest) Assemble(get func(key [32]byte) ([]byte, error)) ([]byte, error) {
	if bm.Size > MaxBlobSize || chunkCount(bm.Size) != uint64(len(bm.Chunks)) {
		return nil, fmt.Errorf("manifest: blob manifest of %d bytes in %d chunks is inconsistent", bm.Size, len(bm.Chunks))
	}
	out := make([]byte, 0, bm.Size)
	for i, k := range bm.Chunks {
		want := ChunkSize
		if i == len(bm.Chunks)-1 {
			want = int(bm.Size - uint64(i)*ChunkSize)
		}
		c, err := get(k)
		if err != nil {
			return nil, fmt.Errorf("manifest: chunk %d of %d (%s): %w", i, len(bm.Chunks), shortKey(k), err)
		}
		if len(c) != want {
			return nil, fmt.Errorf("manifest: chunk %d of %d (%s) has %d bytes, want %d", i, len(bm.Chunks), shortKey(k), len(c), want)
		}
		if BlockKey(c) != k {
			return nil, fmt.Errorf("manifest: chunk %d of %d (%s) does not match its key", i, len(bm.Chunks), shortKey(k))
		}
		out = append(out, c...)
	}
	if sha256.Sum256(out) != bm.Hash {
		return nil, fmt.Errorf("manifest: assembled blob does not match its hash %s", shortKey(bm.Hash))
	}
	return out, nil
}

// Equal reports whether two blob manifests are the same.
func (bm *BlobManifest) Equal(o *BlobManifest) bool {
	return bytes.Equal(bm.Marshal(), o.Marshal())
}

// shortKey is the first 8 bytes of a content key in hex, enough to name a
// chunk in an error.
func shortKey(k [32]byte) string { return hex.EncodeToString(k[:8]) }
