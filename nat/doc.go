// Package nat will hold STUN (pion/stun), NAT classification, hole punching
// coordinated over an existing link and the in-process NAT simulator
// (ARCHITECTURE.md §7). It is empty in this version: every node here must be
// reachable over TCP, and nothing in the code imports this package yet.
package nat
