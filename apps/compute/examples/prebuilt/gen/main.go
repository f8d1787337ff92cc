package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"

	"github.com/darkmatter/darkmatter/internal/atomicfile"
	"github.com/darkmatter/darkmatter/internal/wasmbuild"
)

func main() {
	defer wasmbuild.Cleanup()
	for _, m := range []struct{ file, pkg string }{
		{"wordcount.wasm.gz", wasmbuild.WordCount},
		{"fanout.wasm.gz", wasmbuild.FanOut},
		{"render.wasm.gz", wasmbuild.Render},
		{"site.wasm.gz", "github.com/darkmatter/darkmatter/apps/compute/examples/site"},
	} {
		code, err := wasmbuild.Build(m.pkg)
		if err != nil {
			fail(err)
		}
		var b bytes.Buffer
		zw, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
		if err != nil {
			fail(err)
		}
		// No name or time in the header: the file depends on the module only.
		if _, err := zw.Write(code); err != nil {
			fail(err)
		}
		if err := zw.Close(); err != nil {
			fail(err)
		}
		if err := atomicfile.Write(m.file, b.Bytes(), 0o644); err != nil {
			fail(err)
		}
		fmt.Printf("%s: module %d bytes, %d compressed\n", m.file, len(code), b.Len())
	}
}

func fail(err error) {
	wasmbuild.Cleanup()
	fmt.Fprintln(os.Stderr, "gen:", err)
	os.Exit(1)
}
