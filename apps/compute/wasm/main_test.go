package wasm

import (
	"context"
	"os"
	"testing"

	"github.com/tetratelabs/wazero"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	sharedCache = wazero.NewCompilationCache()
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		if buildDir != "" {
			os.RemoveAll(buildDir)
		}
		sharedCache.Close(context.Background())
		os.Exit(code)
	}))
}
