// Package executor runs delegated calls (spec/compute.md §4, §5): it serves
// one BEGIN_COMPUTE stream per call, checks the module against its policy
// (hash, signature, allowed authors, permissions, limits), gets the module
// from its cache, the DHT or the requester, fetches the call's input, runs
// it with package wasm within the smaller of the manifest's limits and its
// own, and answers one RESULT.
//
// A running module's sub-calls go to Config.Delegate, which the node
// carries over circuits of its own to other executors, so a sub-executor
// sees only this executor's circuit, never the requester. The executor
// keeps the call tree's limits: each sub-call gets one level of depth less
// and a share of the tree's call budget, which the child's RESULT reports
// as used and the rest returns.
//
// Bounds: Capacity calls at once (more are refused Busy at once, not
// queued), a byte bound on cached modules, CALL and MODULE frames read
// within deadlines and refused above their sizes.
package executor
