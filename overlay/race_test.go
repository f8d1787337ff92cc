//go:build race

package overlay

// raceEnabled reports a -race build.
const raceEnabled = true
