// Package ratelimit is a token bucket for the limits that bound what a
// peer may ask of a node per unit of time (CREATE cells, DESTROY replies,
// DIR_GET requests; spec/limits.md).
//
// It is not safe for concurrent use, keeps no clock of its own and starts
// no goroutines: the owner serialises calls and passes the time.
package ratelimit
