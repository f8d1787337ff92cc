package overlay

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/apps/compute/manifest"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/dht"
)

// blobWorkers is how many chunk stores or fetches of one blob run at once.
const blobWorkers = 8

// PutBlob stores content in the DHT as a content-addressed blob
// (spec/compute.md §2, §3): its chunks as blocks (type 3) and its blob
// manifest under its hash (type 5), all owned by a key made for this blob
// alone, so that two blobs stored by one node cannot be linked by owner.
// The node republishes them while it runs; the records live ContentTTL
// otherwise. It returns the blob's hash (the SHA-256 of content).
func (n *Node) PutBlob(ctx context.Context, content []byte) ([32]byte, error) {
	bm, chunks, hash, err := manifest.Split(content)
	if err != nil {
		return hash, err
	}
	owner, err := keys.GenerateIdentity(nil)
	if err != nil {
		return hash, err
	}
	recs := make([]*dht.Record, 0, len(chunks)+1)
	for _, c := range chunks {
		recs = append(recs, &dht.Record{Type: manifest.TypeBlock, Key: dht.Key(manifest.BlockKey(c)), Value: c})
	}
	recs = append(recs, &dht.Record{Type: manifest.TypeBlob, Key: manifest.BlobRecordKey(hash), Value: bm})
	return hash, n.putAll(ctx, recs, owner)
}

// putAll signs recs with owner and stores them, blobWorkers at a time; it
// fails if any record was taken by no node.
func (n *Node) putAll(ctx context.Context, recs []*dht.Record, owner *keys.IdentityPrivateKey) error {
	expires := time.Now().Add(manifest.ContentTTL).Unix()
	for _, r := range recs {
		r.Seq, r.Expires = uint64(time.Now().Unix()), expires
		if err := r.Sign(n.cfg.Network, owner); err != nil {
			return err
		}
	}
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
		next  = make(chan *dht.Record)
	)
	for range min(blobWorkers, len(recs)) {
		wg.Go(func() {
			for r := range next {
				stored, err := n.DHTPut(ctx, r)
				if err == nil && stored == 0 {
					err = errors.New("no DHT node took the record")
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("overlay: storing a record of type %d: %w", r.Type, err)
					}
					mu.Unlock()
				}
			}
		})
	}
	for _, r := range recs {
		mu.Lock()
		failed := first != nil
		mu.Unlock()
		if failed {
			break
		}
		next <- r
	}
	close(next)
	wg.Wait()
	return first
}

// GetBlob fetches the blob whose SHA-256 is hash from the DHT: a blob
// manifest stored under it, then its chunks, each checked against its key,
// and the whole against hash (manifest.BlobManifest.Assemble). Since any
// owner may store a blob manifest, it tries each until one assembles.
func (n *Node) GetBlob(ctx context.Context, hash [32]byte) ([]byte, error) {
	recs, err := n.DHTGet(ctx, manifest.TypeBlob, manifest.BlobRecordKey(hash))
	if err != nil {
		return nil, err
	}
	err = errors.New("overlay: no blob manifest in the DHT")
	for _, r := range recs {
		bm, perr := manifest.ParseBlobManifest(r.Value)
		if perr != nil || bm.Hash != hash {
			continue
		}
		var content []byte
		if content, err = n.assemble(ctx, bm); err == nil {
			return content, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, err
}

// assemble fetches bm's chunks, blobWorkers at a time, and assembles them.
func (n *Node) assemble(ctx context.Context, bm *manifest.BlobManifest) ([]byte, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	got := make([][]byte, len(bm.Chunks))
	errs := make([]error, len(bm.Chunks))
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(blobWorkers, len(bm.Chunks)) {
		wg.Go(func() {
			for i := range next {
				if got[i], errs[i] = n.getBlock(ctx, bm.Chunks[i]); errs[i] != nil {
					cancel()
				}
			}
		})
	}
	for i := range bm.Chunks {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	at := make(map[[32]byte]int, len(bm.Chunks))
	for i, k := range bm.Chunks {
		at[k] = i
	}
	return bm.Assemble(func(k [32]byte) ([]byte, error) {
		i := at[k]
		if errs[i] != nil {
			return nil, errs[i]
		}
		if got[i] == nil && len(bm.Chunks) > 0 {
			return nil, context.Canceled
		}
		return got[i], nil
	})
}

// getBlock returns a block: any stored record will do, since the type's
// rule makes its key the hash of its value. A lookup that finds nothing is
// tried twice more after a pause: DHT nodes refuse requests over their
// per-peer rate, which a blob of many chunks can reach on a small network.
func (n *Node) getBlock(ctx context.Context, key [32]byte) ([]byte, error) {
	var err error
	for try := range blockTries {
		if try > 0 {
			select {
			case <-time.After(time.Duration(try) * blockRetryPause):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		var recs []*dht.Record
		if recs, err = n.DHTGet(ctx, manifest.TypeBlock, dht.Key(key)); err != nil {
			continue
		}
		for _, r := range recs {
			if manifest.BlockKey(r.Value) == key {
				return r.Value, nil
			}
		}
		err = errors.New("overlay: block not in the DHT")
	}
	return nil, err
}

// Block lookups: tries, and the pause before the second (twice that
// before the third).
const (
	blockTries      = 3
	blockRetryPause = 500 * time.Millisecond
)

// PublishModule stores a module in the DHT (spec/compute.md §3): its bytes
// as a blob, and m signed by author as its manifest (type 4, owned by the
// author). m's module hash and size are set from code. It returns the
// signed manifest; the module's address is m.ModuleHash.
func (n *Node) PublishModule(ctx context.Context, code []byte, m *manifest.Manifest, author *keys.IdentityPrivateKey) ([]byte, error) {
	m.ModuleHash, m.ModuleSize = manifest.ModuleHash(code), uint32(min(len(code), math.MaxUint32))
	raw, err := m.Sign(n.cfg.Network, author)
	if err != nil {
		return nil, err
	}
	if _, err := n.PutBlob(ctx, code); err != nil {
		return nil, err
	}
	rec := &dht.Record{Type: manifest.TypeModule, Key: manifest.ModuleRecordKey(m.ModuleHash), Value: raw}
	if err := n.putAll(ctx, []*dht.Record{rec}, author); err != nil {
		return nil, err
	}
	return raw, nil
}

// moduleManifests returns the manifests stored for a module (the
// executor verifies them).
func (n *Node) moduleManifests(ctx context.Context, module [32]byte) ([][]byte, error) {
	recs, err := n.DHTGet(ctx, manifest.TypeModule, manifest.ModuleRecordKey(module))
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(recs))
	for i, r := range recs {
		out[i] = r.Value
	}
	return out, nil
}
