package executor

import (
	"fmt"
	"time"

	"github.com/darkmatter/darkmatter/apps/compute/manifest"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/defaults"
)

// Policy is what an executor's operator allows. Zero fields take their
// defaults.
type Policy struct {
	// Authors, when not empty, are the only module authors it runs;
	// empty means any module with a valid signature.
	Authors []keys.IdentityPublicKey
	// Capacity is how many calls it runs at once; more are refused Busy.
	// Default 8.
	Capacity int
	// MemoryPages is the most linear memory a module may ask for, in
	// 64 KiB pages. Default 256 (16 MiB).
	MemoryPages uint32
	// Timeout is the most wall time of one call. Default 10 s.
	Timeout time.Duration
	// MaxOutput is the largest output it returns. Default 1 MiB.
	MaxOutput int
	// MaxDepth is the most levels of sub-calls it carries below a call it
	// runs. Default 4. (Zero takes the default: to refuse sub-calls, set
	// MaxFanOut to -1.)
	MaxDepth uint8
	// MaxFanOut is the most sub-calls one call may make. Default 16; -1
	// refuses sub-calls.
	MaxFanOut int
	// MaxBudget is the most calls a call tree it starts may run. Default
	// 256.
	MaxBudget uint16
	// CacheBytes bounds the module bytes it keeps. Default 64 MiB.
	CacheBytes int
	// NoDataSources refuses modules that read blobs (by default they may).
	NoDataSources bool
}

// Defaults.
const (
	DefaultCapacity    = 8
	DefaultMemoryPages = 256
	DefaultTimeout     = 10 * time.Second
	DefaultMaxOutput   = 1 << 20
	DefaultMaxDepth    = 4
	DefaultMaxFanOut   = 16
	DefaultMaxBudget   = 256
	DefaultCacheBytes  = 64 << 20
)

func (p *Policy) setDefaults() {
	defaults.Set(&p.Capacity, DefaultCapacity)
	if p.MemoryPages == 0 {
		p.MemoryPages = DefaultMemoryPages
	}
	p.MemoryPages = min(p.MemoryPages, manifest.MaxMemoryPages)
	defaults.Set(&p.Timeout, DefaultTimeout)
	defaults.Set(&p.MaxOutput, DefaultMaxOutput)
	p.MaxOutput = min(p.MaxOutput, manifest.MaxOutputLimit)
	if p.MaxDepth == 0 {
		p.MaxDepth = DefaultMaxDepth
	}
	p.MaxDepth = min(p.MaxDepth, manifest.MaxDepth)
	if p.MaxFanOut == 0 {
		p.MaxFanOut = DefaultMaxFanOut
	}
	p.MaxFanOut = min(p.MaxFanOut, manifest.MaxFanOut)
	if p.MaxBudget == 0 {
		p.MaxBudget = DefaultMaxBudget
	}
	defaults.Set(&p.CacheBytes, DefaultCacheBytes)
}

// admit checks a verified manifest against the policy and returns why it
// is refused, or "".
func (p *Policy) admit(m *manifest.Manifest) string {
	if len(p.Authors) > 0 {
		ok := false
		for _, a := range p.Authors {
			ok = ok || a == m.Author
		}
		if !ok {
			return "the module's author is not allowed here"
		}
	}
	if m.Limits.MemoryPages > p.MemoryPages {
		return fmt.Sprintf("the module asks for %d memory pages; this executor allows %d", m.Limits.MemoryPages, p.MemoryPages)
	}
	if m.Permissions&manifest.PermDataSources != 0 && p.NoDataSources {
		return "the module reads data sources; this executor allows none"
	}
	return ""
}
