package prebuilt

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"io"
	"sync"
)

// The embedded modules, gzip-compressed (go generate writes them).
var (
	//go:embed wordcount.wasm.gz
	wordcountGz []byte
	//go:embed fanout.wasm.gz
	fanoutGz []byte
	//go:embed render.wasm.gz
	renderGz []byte
	//go:embed site.wasm.gz
	siteGz []byte
)

// WordCount returns the wordcount module: its function "count" writes the
// number of words of its input in decimal.
func WordCount() []byte { return wordcount() }

// FanOut returns the fanout module: its function "count" takes the hex
// SHA-256 of the wordcount module, a newline and a text, counts the words
// of four parts of the text in parallel sub-calls of wordcount's "count",
// and writes their sum. Its manifest needs the sub-call permission.
func FanOut() []byte { return fanout() }

// Render returns the render module: "page" turns a JSON document
// ({"title":..., "items":[{"name":..., "value":...}]}) into an HTML page;
// "blob" does the same with the JSON read from the data source whose hex
// SHA-256 is its input (its manifest needs the data-source permission).
func Render() []byte { return render() }

// Site returns the site-handler module (spec/sites.md §8): "page" takes a
// handler input, reads the site's file /data/items.json as a data source
// and answers an HTML page of it (Content-Type line, blank line, page),
// or a 404 page when the site has no such file. Its manifest needs the
// data-source permission.
func Site() []byte { return site() }

var (
	wordcount = sync.OnceValue(func() []byte { return gunzip("wordcount", wordcountGz) })
	fanout    = sync.OnceValue(func() []byte { return gunzip("fanout", fanoutGz) })
	render    = sync.OnceValue(func() []byte { return gunzip("render", renderGz) })
	site      = sync.OnceValue(func() []byte { return gunzip("site", siteGz) })
)

// gunzip decompresses an embedded file. The files are part of the binary,
// checked by the tests: a failure is a broken build, not an input error.
func gunzip(name string, gz []byte) []byte {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		panic(fmt.Sprintf("prebuilt: embedded %s module: %v (run go generate)", name, err))
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		panic(fmt.Sprintf("prebuilt: embedded %s module: %v (run go generate)", name, err))
	}
	return b
}
