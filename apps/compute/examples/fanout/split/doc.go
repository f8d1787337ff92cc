// Package split cuts a text into parts at white space, for the fanout
// example module; it is kept apart so it can be tested natively.
package split
