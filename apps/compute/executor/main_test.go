package executor

import (
	"context"
	"os"
	"testing"

	"github.com/darkmatter/darkmatter/internal/wasmbuild"
	"github.com/tetratelabs/wazero"
	"go.uber.org/goleak"
)

// testCache is shared by every test's executors, so that each module is
// compiled once per test binary (slow under the race detector).
var testCache wazero.CompilationCache

func TestMain(m *testing.M) {
	testCache = wazero.NewCompilationCache()
	code := m.Run()
	testCache.Close(context.Background())
	wasmbuild.Cleanup()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			println("goleak:", err.Error())
			code = 1
		}
	}
	os.Exit(code)
}
