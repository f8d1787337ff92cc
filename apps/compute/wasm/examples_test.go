package wasm

import (
	"context"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/apps/compute/examples/fanout/split"
	"github.com/darkmatter/darkmatter/apps/compute/examples/render/page"
	"github.com/darkmatter/darkmatter/apps/compute/examples/wordcount/words"
)

// The fanout example splits its input, sub-calls wordcount on every part in
// parallel (here on the same Runtime) and sums the answers.
func TestFanoutExample(t *testing.T) {
	fan, fanHash := module(t, "../examples/fanout")
	wc, wcHash := module(t, wordcountPkg)
	r := newRuntime(t, Limits{Timeout: time.Minute}) // slow under -race
	var mu sync.Mutex
	var parts []string
	sub := func(ctx context.Context, m [32]byte, fn string, in []byte) ([]byte, error) {
		if m != wcHash || fn != "count" {
			t.Errorf("sub-call of %x %q", m, fn)
		}
		mu.Lock()
		parts = append(parts, string(in))
		mu.Unlock()
		return r.Run(ctx, wcHash, wc, fn, in, nil)
	}
	text := strings.Repeat("alpha beta  gamma\ndelta ", 250)
	in := hex.EncodeToString(wcHash[:]) + "\n" + text
	out, err := r.Run(context.Background(), fanHash, fan, "count", []byte(in), sub)
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa(words.Count([]byte(text))); string(out) != want {
		t.Fatalf("got %q, want %s", out, want)
	}
	// The parts arrive in any order (they run in parallel).
	var want []string
	for _, p := range split.Split([]byte(text), 4) {
		want = append(want, string(p))
	}
	slices.Sort(parts)
	slices.Sort(want)
	if len(want) != 4 || !slices.Equal(parts, want) {
		t.Fatalf("sub-call inputs %d, want the 4 parts of the text", len(parts))
	}
}

func TestRenderExample(t *testing.T) {
	code, hash := module(t, "../examples/render")
	r := newRuntime(t, Limits{Timeout: time.Minute}) // slow under -race
	in := []byte(`{"title":"Blocks <today>","items":[{"name":"height","value":"1234"},{"name":"a&b","value":"\"q\""}]}`)
	out, err := r.Run(context.Background(), hash, code, "page", in, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := page.Render(in)
	if string(out) != string(want) || !strings.Contains(string(out), "<h1>Blocks &lt;today&gt;</h1>") {
		t.Fatalf("got\n%s", out)
	}
	if _, err := r.Run(context.Background(), hash, code, "page", []byte("{"), nil); err == nil {
		t.Fatal("bad JSON rendered")
	}
}
