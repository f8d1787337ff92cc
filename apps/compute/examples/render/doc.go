//go:build wasip1

// Command render is the page-renderer example module of darkmatter's
// compute layer. Its function "page" reads a JSON object
//
//	{"title": "...", "items": [{"name": "...", "value": "..."}, ...]}
//
// and writes an HTML5 page with the title as heading and the items as a
// table, every string escaped. Bad JSON fails the call. Its function
// "blob" takes the SHA-256 of a data source (64 hex digits) as input and
// renders that blob the same way; a data source that cannot be read fails
// the call.
package main
