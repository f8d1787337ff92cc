package wasm

import (
	"context"
	"time"
)

// SourceFetcher fetches the data source (content-addressed blob) whose
// SHA-256 is hash, for example from the DHT. It must return when ctx ends.
// The Runtime checks the bytes against hash itself: a fetcher need not be
// trusted, but it must not modify the bytes after returning them. Several
// may run at once.
type SourceFetcher func(ctx context.Context, hash [32]byte) ([]byte, error)

// Job is one run of a module function (see [Runtime.RunJob]).
type Job struct {
	Hash     [32]byte // SHA-256 of Code
	Code     []byte   // the module's bytes
	Function string   // the export to run, of type () -> ()
	Input    []byte   // at most the Runtime's MaxInput bytes

	Sub    SubCaller     // carries out sub-calls; nil refuses them (-1)
	Source SourceFetcher // fetches data sources; nil refuses them (-1)

	// An executor may lower these limits of the Runtime for one run, for
	// example to the smaller of a module's manifest and its own policy.
	// Zero means the Runtime's limit; a larger value is capped at it.

	// Timeout is the run's wall time. A negative value times out at once.
	Timeout time.Duration
	// MaxOutput is the most bytes the run may write. A negative value
	// allows no output.
	MaxOutput int
	// MaxSubCalls is the number of sub-calls the run may start. A
	// negative value refuses every sub-call (-1), as a nil Sub does.
	MaxSubCalls int
}

// limits returns the limits of j's run: the Runtime's limits l, lowered by
// j's.
func (j *Job) limits(l Limits) Limits {
	l.Timeout = lower(j.Timeout, l.Timeout)
	l.MaxOutput = lower(j.MaxOutput, l.MaxOutput)
	l.MaxSubCalls = lower(j.MaxSubCalls, l.MaxSubCalls)
	return l
}

// lower returns v capped at limit, limit when v is 0, and 0 when v is
// negative.
func lower[T int | time.Duration](v, limit T) T {
	switch {
	case v == 0:
		return limit
	case v < 0:
		return 0
	}
	return min(v, limit)
}
