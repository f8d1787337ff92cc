//go:build race

package dht

// raceEnabled reports a -race build.
const raceEnabled = true
