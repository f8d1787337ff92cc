//go:build race

package hs

const raceEnabled = true
