// Package sitepage answers a site handler call (spec/sites.md §8) for the
// site example module; it is kept apart so it can be tested natively.
package sitepage
