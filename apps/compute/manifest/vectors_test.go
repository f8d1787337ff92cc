package manifest

import (
	"encoding/hex"
	"reflect"
	"testing"

	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/testvec"
)

// vectorsFile is the JSON test vector file in spec/vectors shared with
// spec/compute.md §1–§3.
const vectorsFile = "compute.json"

type computeVectors struct {
	Comment  string      `json:"comment"`
	Manifest vecManifest `json:"manifest"`
	Blob     vecBlob     `json:"blob"`
}

type vecManifest struct {
	Network     string   `json:"network"`
	AuthorSeed  string   `json:"author_seed"`
	Module      string   `json:"module"`
	Functions   []string `json:"functions"`
	Permissions uint16   `json:"permissions"`
	MemoryPages uint32   `json:"memory_pages"`
	TimeoutMS   uint32   `json:"timeout_ms"`
	MaxOutput   uint32   `json:"max_output"`
	MaxDepth    uint8    `json:"max_depth"`
	MaxFanOut   uint8    `json:"max_fan_out"`
	Created     int64    `json:"created"`
	ModuleHash  string   `json:"module_hash"`
	Encoded     string   `json:"encoded"`
	RecordKey   string   `json:"record_key"`
}

type vecBlob struct {
	ContentSize  int      `json:"content_size"`
	ContentStart byte     `json:"content_start"`
	Hash         string   `json:"hash"`
	ChunkKeys    []string `json:"chunk_keys"`
	Manifest     string   `json:"manifest"`
	RecordKey    string   `json:"record_key"`
}

func generateComputeVectors() *computeVectors {
	return &computeVectors{
		Comment: "darkmatter compute vectors (spec/compute.md). Hex unless noted. manifest: author_seed is the author's Ed25519 seed; " +
			"module is the module bytes; encoded is the signed manifest (Manifest.Sign for network); record_key its DHT key (type 4). " +
			"blob: the content is content_size bytes content_start, content_start+1, ... (mod 256); chunk_keys are the BlockKeys of its " +
			"three chunks; manifest is the blob manifest; record_key its DHT key (type 5). " +
			"Checked by apps/compute/manifest TestVectors (go test ./apps/compute/manifest -run TestVectors -update rewrites this file).",
		Manifest: vecManifest{
			Network: "darkmatter", AuthorSeed: hex.EncodeToString(testvec.Seq(0x20, 32)),
			Module:      hex.EncodeToString(append([]byte("\x00asm\x01\x00\x00\x00"), testvec.Seq(0x40, 24)...)),
			Functions:   []string{"count_words", "render"},
			Permissions: 3, MemoryPages: 64, TimeoutMS: 2000, MaxOutput: 65536, MaxDepth: 2, MaxFanOut: 4,
			Created: 1767225600,
		},
		Blob: vecBlob{ContentSize: 2*ChunkSize + 1000, ContentStart: 0x07},
	}
}

func TestVectors(t *testing.T) {
	v := testvec.LoadOrGenerate(t, vectorsFile, generateComputeVectors)
	mv := &v.Manifest
	code := testvec.Hex(t, mv.Module)
	author := keys.IdentityFromSeed([keys.SeedSize]byte(testvec.Hex(t, mv.AuthorSeed)))
	m := &Manifest{
		ModuleHash: ModuleHash(code), ModuleSize: uint32(len(code)), Functions: mv.Functions,
		Permissions: Permissions(mv.Permissions),
		Limits:      Limits{MemoryPages: mv.MemoryPages, TimeoutMS: mv.TimeoutMS, MaxOutput: mv.MaxOutput, MaxDepth: mv.MaxDepth, MaxFanOut: mv.MaxFanOut},
		Created:     mv.Created,
	}
	enc, err := m.Sign(mv.Network, author)
	if err != nil {
		t.Fatal(err)
	}
	testvec.CheckHex(t, "module hash", &mv.ModuleHash, m.ModuleHash[:])
	testvec.CheckHex(t, "signed manifest", &mv.Encoded, enc)
	rk := ModuleRecordKey(m.ModuleHash)
	testvec.CheckHex(t, "module record key", &mv.RecordKey, rk[:])
	// The file's encoding parses to the same manifest and verifies.
	p, err := Parse(testvec.Hex(t, mv.Encoded))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Verify(mv.Network); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p, m) || p.CheckCode(code) != nil {
		t.Fatal("the vector manifest does not parse to the signed one")
	}

	bv := &v.Blob
	content := testvec.Seq(bv.ContentStart, bv.ContentSize)
	mb, chunks, hash, err := Split(content)
	if err != nil {
		t.Fatal(err)
	}
	if len(chunks) != 3 {
		t.Fatalf("%d chunks, want 3", len(chunks))
	}
	testvec.CheckHex(t, "blob hash", &bv.Hash, hash[:])
	if testvec.Update() {
		bv.ChunkKeys = make([]string, len(chunks))
	}
	if len(bv.ChunkKeys) != len(chunks) {
		t.Fatalf("file has %d chunk keys, computed %d", len(bv.ChunkKeys), len(chunks))
	}
	for i, c := range chunks {
		k := BlockKey(c)
		testvec.CheckHex(t, "chunk key", &bv.ChunkKeys[i], k[:])
	}
	testvec.CheckHex(t, "blob manifest", &bv.Manifest, mb)
	brk := BlobRecordKey(hash)
	testvec.CheckHex(t, "blob record key", &bv.RecordKey, brk[:])
	bm, err := ParseBlobManifest(testvec.Hex(t, bv.Manifest))
	if err != nil {
		t.Fatal(err)
	}
	s := store{}
	for _, c := range chunks {
		s[BlockKey(c)] = c
	}
	if _, err := bm.Assemble(s.get); err != nil {
		t.Fatal(err)
	}
	if testvec.Update() {
		testvec.Save(t, vectorsFile, v)
	}
}
