package wasm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/apps/compute/examples/render/page"
	"github.com/darkmatter/darkmatter/apps/compute/manifest"
)

// blobs serves the blobs of a map by hash, and counts its fetches.
type blobs struct {
	m       map[[32]byte][]byte
	fetches atomic.Int32
}

func newBlobs(bs ...[]byte) *blobs {
	s := &blobs{m: map[[32]byte][]byte{}}
	for _, b := range bs {
		s.m[sha256.Sum256(b)] = b
	}
	return s
}

func (s *blobs) fetch(_ context.Context, hash [32]byte) ([]byte, error) {
	s.fetches.Add(1)
	b, ok := s.m[hash]
	if !ok {
		return nil, errors.New("no such blob")
	}
	return b, nil
}

// sourcesInput encodes the input of evil's "sources" function.
func sourcesInput(n int, hash [32]byte) []byte {
	return append([]byte{byte(n)}, hash[:]...)
}

const pageJSON = `{"title":"Blob <data>","items":[{"name":"x&y","value":"1"}]}`

// The render example's "blob" export renders a data source exactly as
// "page" renders its input.
func TestRenderBlobExample(t *testing.T) {
	code, hash := module(t, "../examples/render")
	r := newRuntime(t, Limits{Timeout: time.Minute}) // slow under -race
	data := []byte(pageJSON)
	blobHash := sha256.Sum256(data)
	src := newBlobs(data)
	out, err := r.RunJob(context.Background(), Job{Hash: hash, Code: code, Function: "blob",
		Input: []byte(hex.EncodeToString(blobHash[:])), Source: src.fetch})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := page.Render(data)
	if string(out) != string(want) || !strings.Contains(string(out), "<h1>Blob &lt;data&gt;</h1>") {
		t.Fatalf("got\n%s", out)
	}
	viaPage, err := r.Run(context.Background(), hash, code, "page", data, nil)
	if err != nil || !bytes.Equal(viaPage, out) {
		t.Fatalf("page export: %v, or output differs from blob's", err)
	}

	// A blob the fetcher does not have, a fetcher that lies, and no
	// fetcher at all: the example panics, the run traps.
	other := sha256.Sum256([]byte("other"))
	liar := func(context.Context, [32]byte) ([]byte, error) { return []byte(pageJSON + " "), nil }
	for name, j := range map[string]Job{
		"missing": {Input: []byte(hex.EncodeToString(other[:])), Source: src.fetch},
		"liar":    {Input: []byte(hex.EncodeToString(blobHash[:])), Source: liar},
		"nil":     {Input: []byte(hex.EncodeToString(blobHash[:]))},
	} {
		j.Hash, j.Code, j.Function = hash, code, "blob"
		if out, err := r.RunJob(context.Background(), j); !errors.Is(err, ErrTrap) || out != nil {
			t.Errorf("%s: got %q %v, want ErrTrap", name, out, err)
		}
	}
}

// The codes a module sees: the blob, -1 without a fetcher, -3 for a failed
// fetch or bytes that do not match the hash, -4 for a blob over
// MaxSourceSize. A source may be larger than MaxInput.
func TestSourceCodes(t *testing.T) {
	evil, hash := module(t, evilPkg)
	r := newRuntime(t, Limits{MaxInput: 40, MaxSourceSize: 100})
	fits, huge := bytes.Repeat([]byte("f"), 100), bytes.Repeat([]byte("h"), 101)
	src := newBlobs(fits, huge)
	liar := func(_ context.Context, h [32]byte) ([]byte, error) {
		return append(bytes.Clone(src.m[h]), 'x')[1:], nil // same length, other bytes
	}
	for _, c := range []struct {
		name  string
		blob  []byte
		fetch SourceFetcher
		want  string
	}{
		{"fits", fits, src.fetch, string(fits) + "\n"},
		{"nil", fits, nil, "err:-1\n"},
		{"missing", []byte("absent"), src.fetch, "err:-3\n"},
		{"liar", fits, liar, "err:-3\n"},
		{"huge", huge, src.fetch, "err:-4\n"},
	} {
		in := sourcesInput(1, sha256.Sum256(c.blob))
		out, err := r.RunJob(context.Background(), Job{Hash: hash, Code: evil, Function: "sources", Input: in, Source: c.fetch})
		if err != nil || string(out) != c.want {
			t.Errorf("%s: got %.20q %v, want %.20q", c.name, out, err, c.want)
		}
	}
}

// Data sources share the handle space of sub-calls, and each kind counts
// against its own limit only.
func TestSourceHandlesSharedWithCalls(t *testing.T) {
	evil, hash := module(t, evilPkg)
	r := newRuntime(t, Limits{MaxSubCalls: 2, MaxSources: 1})
	src := newBlobs([]byte("blob"))
	blobHash := sha256.Sum256([]byte("blob"))
	sub := func(_ context.Context, _ [32]byte, fn string, in []byte) ([]byte, error) {
		return append([]byte("R:"), in...), nil
	}
	out, err := r.RunJob(context.Background(), Job{Hash: hash, Code: evil, Function: "mixed",
		Input: append(bytes.Repeat([]byte{7}, 32), blobHash[:]...), Sub: sub, Source: src.fetch})
	if want := "012\nR:a\nblob\nR:b\n"; err != nil || string(out) != want {
		t.Fatalf("got %q %v, want %q", out, err, want)
	}
}

// A run may start MaxSources data sources; one more fails it with
// ErrSourceLimit. Refused sources (no fetcher) do not count.
func TestSourceLimit(t *testing.T) {
	evil, hash := module(t, evilPkg)
	r := newRuntime(t, Limits{MaxSources: 3})
	src := newBlobs([]byte("k"))
	in := func(n int) Job {
		return Job{Hash: hash, Code: evil, Function: "sources", Input: sourcesInput(n, sha256.Sum256([]byte("k"))), Source: src.fetch}
	}
	out, err := r.RunJob(context.Background(), in(3))
	if err != nil || string(out) != "k\nk\nk\n" {
		t.Fatalf("3 sources: %q %v", out, err)
	}
	if _, err := r.RunJob(context.Background(), in(4)); !errors.Is(err, ErrSourceLimit) {
		t.Fatalf("4 sources: got %v, want ErrSourceLimit", err)
	}
	if n := src.fetches.Load(); n != 6 {
		t.Fatalf("%d fetches, want 3 + 3 (the fourth source never starts)", n)
	}
	refused := in(5)
	refused.Source = nil
	if out, err := r.RunJob(context.Background(), refused); err != nil || string(out) != strings.Repeat("err:-1\n", 5) {
		t.Fatalf("5 refused sources: %q %v", out, err)
	}
	// The Runtime keeps working after a run broke the limit.
	if out, err := r.RunJob(context.Background(), in(1)); err != nil || string(out) != "k\n" {
		t.Fatalf("after the limit: %q %v", out, err)
	}
}

// A fetch that never answers is cancelled when its run ends, and its
// goroutine ends with the run (goleak checks).
func TestSourceCancelledWithRun(t *testing.T) {
	evil, hash := module(t, evilPkg)
	r := newRuntime(t, Limits{})
	started, ended := make(chan struct{}), make(chan struct{})
	fetch := func(ctx context.Context, _ [32]byte) ([]byte, error) {
		close(started)
		<-ctx.Done()
		close(ended)
		return nil, ctx.Err()
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-started
		cancel()
	}()
	out, err := r.RunJob(ctx, Job{Hash: hash, Code: evil, Function: "sources", Input: sourcesInput(1, [32]byte{}), Source: fetch})
	if !errors.Is(err, context.Canceled) || out != nil {
		t.Fatalf("got %q %v, want context.Canceled", out, err)
	}
	select {
	case <-ended:
	default:
		t.Fatal("fetch still running after RunJob returned")
	}
}

func TestDefaultMaxSourceSizeIsMaxBlobSize(t *testing.T) {
	if DefaultMaxSourceSize != manifest.MaxBlobSize {
		t.Fatalf("DefaultMaxSourceSize %d, manifest.MaxBlobSize %d", DefaultMaxSourceSize, manifest.MaxBlobSize)
	}
	if l := newRuntime(t, Limits{}).Limits(); l.MaxSources != DefaultMaxSources || l.MaxSourceSize != DefaultMaxSourceSize {
		t.Fatalf("defaults not applied: %+v", l)
	}
}
