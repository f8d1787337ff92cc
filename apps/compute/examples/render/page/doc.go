// Package page turns a small JSON document into an HTML page, for the
// render example module; it is kept apart so it can be tested natively.
package page
