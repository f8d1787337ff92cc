package wasmbuild

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Example module packages of this repository.
const (
	WordCount = "github.com/darkmatter/darkmatter/apps/compute/examples/wordcount"
	FanOut    = "github.com/darkmatter/darkmatter/apps/compute/examples/fanout"
	Render    = "github.com/darkmatter/darkmatter/apps/compute/examples/render"
	Evil      = "github.com/darkmatter/darkmatter/apps/compute/wasm/testdata/evil"
)

var (
	mu    sync.Mutex
	dir   string
	built = map[string][]byte{}
	errs  = map[string]error{}
)

// Build compiles the Go package pkg (an import path of this module) to a
// WebAssembly module and returns its bytes.
func Build(pkg string) ([]byte, error) {
	mu.Lock()
	defer mu.Unlock()
	if code, ok := built[pkg]; ok {
		return code, nil
	}
	if err := errs[pkg]; err != nil {
		return nil, err
	}
	code, err := build(pkg)
	if err != nil {
		errs[pkg] = err
		return nil, err
	}
	built[pkg] = code
	return code, nil
}

func build(pkg string) ([]byte, error) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("wasmbuild: no go toolchain: %w", err)
	}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "wasmbuild"); err != nil {
			return nil, err
		}
	}
	out := filepath.Join(dir, filepath.Base(pkg)+".wasm")
	cmd := exec.Command(gobin, "build", "-buildmode=c-shared", "-trimpath", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("wasmbuild: building %s: %v\n%s", pkg, err, msg)
	}
	return os.ReadFile(out)
}

// Module is Build for a test: it fails tb on error (skips it without a Go
// toolchain) and returns the bytes and their SHA-256.
func Module(tb testing.TB, pkg string) ([]byte, [32]byte) {
	tb.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		tb.Skipf("no go toolchain: %v", err)
	}
	code, err := Build(pkg)
	if err != nil {
		tb.Fatal(err)
	}
	return code, sha256.Sum256(code)
}

// Cleanup removes the build directory; call it from TestMain after the
// tests ran.
func Cleanup() {
	mu.Lock()
	defer mu.Unlock()
	if dir != "" {
		os.RemoveAll(dir)
		dir = ""
	}
	clear(built)
}
