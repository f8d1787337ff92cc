package manifest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/darkmatter/darkmatter/overlay/dht"
)

// DHT record types of delegated calls (spec/dht.md §2.3, spec/compute.md
// §3). The node registers them with dht.Registry.Register.
const (
	TypeBlock  uint16 = 3 // a chunk or a blob manifest, under its BlockKey
	TypeModule uint16 = 4 // a signed module manifest, under ModuleRecordKey
	TypeBlob   uint16 = 5 // a blob manifest, under BlobRecordKey of its content hash
)

// Key contexts of the module and blob record keys.
const (
	ModuleKeyContext = "darkmatter dht module\x00"
	BlobKeyContext   = "darkmatter dht blob\x00"
)

// ContentTTL is the longest lifetime of the three types' records; holders
// republish.
const ContentTTL = 48 * time.Hour

// ModuleRecordKey is the DHT key of the manifests of the module with hash h.
func ModuleRecordKey(h [32]byte) dht.Key {
	return dht.Key(sha256.Sum256(append([]byte(ModuleKeyContext), h[:]...)))
}

// BlobRecordKey is the DHT key of the blob manifests of the content with
// SHA-256 h.
func BlobRecordKey(h [32]byte) dht.Key {
	return dht.Key(sha256.Sum256(append([]byte(BlobKeyContext), h[:]...)))
}

// BlockSpec is the rule of TypeBlock: the key is BlockKey(value); a value
// is at most ChunkSize bytes. Any owner may store a block.
var BlockSpec = dht.TypeSpec{
	Name:     "block",
	MaxValue: ChunkSize,
	MaxTTL:   ContentTTL,
	Validate: func(r *dht.Record) error {
		if dht.Key(BlockKey(r.Value)) != r.Key {
			return errors.New("key is not SHA-256(block context || value)")
		}
		return nil
	},
}

// BlobSpec is the rule of TypeBlob: the value is a blob manifest and the
// key is BlobRecordKey of the content hash it names. Any owner may store
// one; Assemble refuses a manifest whose chunks do not make that content.
var BlobSpec = dht.TypeSpec{
	Name:     "blob",
	MaxValue: MaxBlobManifestSize,
	MaxTTL:   ContentTTL,
	Validate: func(r *dht.Record) error {
		bm, err := ParseBlobManifest(r.Value)
		if err != nil {
			return err
		}
		if BlobRecordKey(bm.Hash) != r.Key {
			return errors.New("key is not SHA-256(blob context || content hash)")
		}
		return nil
	},
}

// ModuleSpec is the rule of TypeModule for network: the value is a module
// manifest signed by its author for network, the owner is the author, and
// the key is ModuleRecordKey of the module hash. The manifest signature
// takes the network, so the rule is built per network.
func ModuleSpec(network string) dht.TypeSpec {
	return dht.TypeSpec{
		Name:     "module",
		MaxValue: MaxManifestSize,
		MaxTTL:   ContentTTL,
		Validate: func(r *dht.Record) error {
			m, err := Parse(r.Value)
			if err != nil {
				return err
			}
			if m.Author != r.Owner {
				return errors.New("owner is not the manifest's author")
			}
			if ModuleRecordKey(m.ModuleHash) != r.Key {
				return errors.New("key is not SHA-256(module context || module hash)")
			}
			if err := m.Verify(network); err != nil {
				return err
			}
			return nil
		},
	}
}

// Register adds TypeBlock, TypeModule and TypeBlob for network to g.
func Register(g *dht.Registry, network string) error {
	for _, t := range []struct {
		t uint16
		s dht.TypeSpec
	}{{TypeBlock, BlockSpec}, {TypeModule, ModuleSpec(network)}, {TypeBlob, BlobSpec}} {
		if err := g.Register(t.t, t.s); err != nil {
			return fmt.Errorf("manifest: %w", err)
		}
	}
	return nil
}
