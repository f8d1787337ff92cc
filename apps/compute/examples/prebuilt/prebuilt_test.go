package prebuilt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/apps/compute/examples/fanout/split"
	"github.com/darkmatter/darkmatter/apps/compute/examples/render/page"
	"github.com/darkmatter/darkmatter/apps/compute/examples/wordcount/words"
	"github.com/darkmatter/darkmatter/apps/compute/wasm"
)

// runtime is one wazero runtime for a test, with room for slow runs under
// -race.
func runtime(t *testing.T) *wasm.Runtime {
	t.Helper()
	r, err := wasm.New(context.Background(), wasm.Limits{Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	return r
}

func TestWordCount(t *testing.T) {
	code := WordCount()
	if !bytes.Equal(code, WordCount()) {
		t.Fatal("two calls return different modules")
	}
	r := runtime(t)
	h := sha256.Sum256(code)
	for in, want := range map[string]string{"a b c": "3", "": "0", "  the quick\nbrown\tfox  ": "4"} {
		out, err := r.Run(context.Background(), h, code, "count", []byte(in), nil)
		if err != nil || string(out) != want {
			t.Errorf("count(%q) = %q, %v; want %s", in, out, err, want)
		}
	}
	if _, err := r.Run(context.Background(), h, code, "nope", nil, nil); err == nil {
		t.Error("a function the module does not export ran")
	}
}

func TestRender(t *testing.T) {
	code := Render()
	r := runtime(t)
	h := sha256.Sum256(code)
	in := []byte(`{"title":"Blocks <today>","items":[{"name":"height","value":"1234"}]}`)
	out, err := r.Run(context.Background(), h, code, "page", in, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := page.Render(in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, want) || !strings.Contains(string(out), "<h1>Blocks &lt;today&gt;</h1>") {
		t.Fatalf("page rendered\n%s\nwant\n%s", out, want)
	}
	// blob reads its data from a data source.
	blob := []byte(`{"title":"from a blob","items":[]}`)
	bh := sha256.Sum256(blob)
	out, err = r.RunJob(context.Background(), wasm.Job{Hash: h, Code: code, Function: "blob", Input: []byte(hex.EncodeToString(bh[:])),
		Source: func(_ context.Context, hash [32]byte) ([]byte, error) {
			if hash != bh {
				return nil, errors.New("no such blob")
			}
			return blob, nil
		}})
	if want, _ := page.Render(blob); err != nil || !bytes.Equal(out, want) {
		t.Fatalf("blob rendered %q, %v", out, err)
	}
}

// fanout splits the text in four, sub-calls the module named in its input
// for each part (here a stub that counts natively) and sums the answers.
func TestFanOut(t *testing.T) {
	code := FanOut()
	r := runtime(t)
	h := sha256.Sum256(code)
	target := sha256.Sum256(WordCount())
	var (
		mu    sync.Mutex
		parts []string
	)
	sub := func(_ context.Context, m [32]byte, fn string, in []byte) ([]byte, error) {
		if m != target || fn != "count" {
			return nil, errors.New("unexpected sub-call")
		}
		mu.Lock()
		parts = append(parts, string(in))
		mu.Unlock()
		return []byte(strconv.Itoa(words.Count(in))), nil
	}
	text := strings.Repeat("one two three four five six seven\n", 30)
	out, err := r.Run(context.Background(), h, code, "count", []byte(hex.EncodeToString(target[:])+"\n"+text), sub)
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa(words.Count([]byte(text))); string(out) != want {
		t.Fatalf("fanout count = %q, want %s", out, want)
	}
	var want []string
	for _, p := range split.Split([]byte(text), 4) {
		want = append(want, string(p))
	}
	slices.Sort(parts)
	slices.Sort(want)
	if !slices.Equal(parts, want) {
		t.Fatalf("sub-call inputs %q, want the four parts %q", parts, want)
	}
}

// The gzip files are not much larger than they must be.
func TestEmbedSizes(t *testing.T) {
	for name, gz := range map[string][]byte{"wordcount": wordcountGz, "fanout": fanoutGz, "render": renderGz} {
		if len(gz) > 2<<20 {
			t.Errorf("%s.wasm.gz is %d bytes; built without -trimpath or with debug data?", name, len(gz))
		}
	}
}
