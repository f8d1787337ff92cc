package wasm

import (
	"context"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Modules are built once per test binary run, into buildDir.
var (
	buildDir  string
	buildMu   sync.Mutex
	built     = map[string][]byte{}
	buildErrs = map[string]error{}
)

// module builds the Go package pkg (relative to this directory) with
// GOOS=wasip1 GOARCH=wasm -buildmode=c-shared and returns its bytes and hash.
func module(tb testing.TB, pkg string) ([]byte, [32]byte) {
	tb.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if code, ok := built[pkg]; ok {
		return code, sha256.Sum256(code)
	}
	if err := buildErrs[pkg]; err != nil {
		tb.Fatal(err)
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		tb.Skipf("no go toolchain: %v", err)
	}
	if buildDir == "" {
		if buildDir, err = os.MkdirTemp("", "wasmtest"); err != nil {
			tb.Fatal(err)
		}
	}
	out := filepath.Join(buildDir, filepath.Base(pkg)+".wasm")
	cmd := exec.Command(gobin, "build", "-buildmode=c-shared", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		buildErrs[pkg] = err
		tb.Fatalf("building %s: %v\n%s", pkg, err, msg)
	}
	code, err := os.ReadFile(out)
	if err != nil {
		tb.Fatal(err)
	}
	built[pkg] = code
	return code, sha256.Sum256(code)
}

const (
	wordcountPkg = "../examples/wordcount"
	evilPkg      = "./testdata/evil"
)

func newRuntime(tb testing.TB, l Limits) *Runtime {
	tb.Helper()
	r, err := New(context.Background(), l)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close(context.Background()) })
	return r
}

// subcallsInput encodes the input of evil's "subcalls" function.
func subcallsInput(n int, hash [32]byte, fn string, arg []byte) []byte {
	b := append([]byte{byte(n)}, hash[:]...)
	b = append(b, byte(len(fn)))
	b = append(b, fn...)
	return append(b, arg...)
}
