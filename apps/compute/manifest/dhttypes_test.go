package manifest

import (
	"strings"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/overlay/dht"
)

func TestDHTTypes(t *testing.T) {
	now := time.Unix(1767225600, 0)
	g := dht.DefaultRegistry()
	if err := Register(g, testNet); err != nil {
		t.Fatal(err)
	}
	k := testKey(1)
	rec := func(typ uint16, key dht.Key, value []byte, signer int) *dht.Record {
		r := &dht.Record{Type: typ, Key: key, Seq: 1, Expires: now.Add(time.Hour).Unix(), Value: value}
		if err := r.Sign(testNet, testKey(byte(signer))); err != nil {
			t.Fatal(err)
		}
		return r
	}
	content := pattern(2*ChunkSize + 5)
	mb, chunks, hash, _ := Split(content)
	signed, err := testManifest().Sign(testNet, k)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := testManifest().Sign("othernet", k)
	mh := ModuleHash(testCode)

	ok := []*dht.Record{
		rec(TypeBlock, BlockKey(chunks[0]), chunks[0], 9),
		rec(TypeBlock, BlockKey(mb), mb, 9),
		rec(TypeBlob, BlobRecordKey(hash), mb, 9),
		rec(TypeModule, ModuleRecordKey(mh), signed, 1),
	}
	for i, r := range ok {
		if err := g.Verify(r, testNet, now); err != nil {
			t.Errorf("record %d: %v", i, err)
		}
	}
	tampered := append([]byte(nil), signed...)
	tampered[len(tampered)-1] ^= 1
	bad := []struct {
		name string
		r    *dht.Record
		want string
	}{
		{"block under another key", rec(TypeBlock, BlockKey(chunks[1]), chunks[0], 9), "block"},
		{"block too large", rec(TypeBlock, BlockKey(make([]byte, ChunkSize+1)), make([]byte, ChunkSize+1), 9), "exceeds"},
		{"blob under another hash", rec(TypeBlob, BlobRecordKey(mh), mb, 9), "blob"},
		{"blob not a manifest", rec(TypeBlob, BlobRecordKey(hash), chunks[2], 9), "malformed"},
		{"module by another owner", rec(TypeModule, ModuleRecordKey(mh), signed, 2), "author"},
		{"module under another key", rec(TypeModule, ModuleRecordKey(hash), signed, 1), "module context"},
		{"module of another network", rec(TypeModule, ModuleRecordKey(mh), other, 1), "signature"},
		{"module tampered", rec(TypeModule, ModuleRecordKey(mh), tampered, 1), "signature"},
		{"module malformed", rec(TypeModule, ModuleRecordKey(mh), signed[:100], 1), "malformed"},
		{"block too long-lived", func() *dht.Record {
			r := &dht.Record{Type: TypeBlock, Key: BlockKey(nil), Seq: 1, Expires: now.Add(ContentTTL + time.Hour).Unix()}
			_ = r.Sign(testNet, k)
			return r
		}(), "expiry"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			err := g.Verify(c.r, testNet, now)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
	if err := Register(g, testNet); err == nil {
		t.Fatal("registered the types twice")
	}
}
