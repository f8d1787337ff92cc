package wasm

import (
	"time"

	"github.com/darkmatter/darkmatter/internal/defaults"
)

// Limits bound what one run may use. Zero fields take their defaults.
type Limits struct {
	// MemoryPages is the most linear memory a module may have, in 64 KiB
	// pages. Default 256 (16 MiB); at most 65536.
	MemoryPages uint32
	// Timeout is the wall time of one run: instantiation, _initialize and
	// the function (compiling a module is not counted).
	// Default 5s.
	Timeout time.Duration
	// MaxOutput is the most bytes a run may write with output_write.
	// Default 1 MiB.
	MaxOutput int
	// MaxInput is the largest input a run accepts, and the largest result
	// of one sub-call handed back to the module. Default 1 MiB.
	MaxInput int
	// MaxSubCalls is the number of sub-calls one run may start. Default 16.
	MaxSubCalls int
	// MaxSources is the number of data sources one run may fetch.
	// Default 16.
	MaxSources int
	// MaxSourceSize is the largest data source handed to a module.
	// Default 7968000, the largest blob (spec/compute.md §2).
	MaxSourceSize int
	// MaxLogs is the number of log messages kept per run (later ones are
	// dropped); each is cut to MaxLogBytes. Defaults 32 and 256.
	MaxLogs, MaxLogBytes int
	// MaxModules is the number of compiled modules kept. Default 64.
	MaxModules int
	// MaxRuns is the number of runs at once; more are refused with ErrBusy
	// (not queued, so that a module's sub-calls on the same Runtime cannot
	// deadlock). Default 8.
	MaxRuns int
	// Logf receives the modules' log messages (quoted). Nil discards them.
	// It is called from several goroutines.
	Logf func(format string, args ...any)
}

// Defaults.
const (
	DefaultMemoryPages = 256
	DefaultTimeout     = 5 * time.Second
	DefaultMaxOutput   = 1 << 20
	DefaultMaxInput    = 1 << 20
	DefaultMaxSubCalls = 16
	DefaultMaxSources  = 16
	// DefaultMaxSourceSize is manifest.MaxBlobSize (not imported: the
	// runtime does not depend on the manifest's package).
	DefaultMaxSourceSize = 7968000
	DefaultMaxLogs       = 32
	DefaultMaxLogBytes   = 256
	DefaultMaxModules    = 64
	DefaultMaxRuns       = 8
)

func (l *Limits) setDefaults() {
	if l.MemoryPages == 0 {
		l.MemoryPages = DefaultMemoryPages
	}
	l.MemoryPages = min(l.MemoryPages, 65536)
	defaults.Set(&l.Timeout, DefaultTimeout)
	defaults.Set(&l.MaxOutput, DefaultMaxOutput)
	defaults.Set(&l.MaxInput, DefaultMaxInput)
	defaults.Set(&l.MaxSubCalls, DefaultMaxSubCalls)
	defaults.Set(&l.MaxSources, DefaultMaxSources)
	defaults.Set(&l.MaxSourceSize, DefaultMaxSourceSize)
	defaults.Set(&l.MaxLogs, DefaultMaxLogs)
	defaults.Set(&l.MaxLogBytes, DefaultMaxLogBytes)
	defaults.Set(&l.MaxModules, DefaultMaxModules)
	defaults.Set(&l.MaxRuns, DefaultMaxRuns)
}
