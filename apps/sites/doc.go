// Package sites encodes and checks the signed, content-addressed bundle of
// a distributed site (spec/sites.md): the site manifest, which maps every
// path of the site to the SHA-256 and size of its content (each file is a
// blob of spec/compute.md §2) and lists the WebAssembly handlers that
// generate dynamic pages; and the small DHT record (type 7) that points at
// the newest manifest of a site key; the host record (DHT type 8) by which
// a hidden service announces that it hosts a copy of a site; and the host
// side of hosting (spec/sites.md §5, §6): Store keeps blobs on disk, Host
// syncs sites into it and serves their blobs over HTTP/1.1 (ServeHTTP).
// The visitor side (spec/sites.md §7, §8): Client fetches a site's
// manifest and files from its hosts through an Env the node provides,
// checks every byte against the site key's signature, caches what it
// verified, and Handler serves a site to a browser, running its
// WebAssembly handlers as delegated calls. Finding hosts, dialling them
// and publishing records is the node's work (overlay), not this package's.
//
// Every decoder checks the layout only and returns a clear error on bad
// input, never panics; signatures and content are checked by Verify,
// CheckFile and Pointer.CheckManifest. Build turns a directory into files
// and an unsigned manifest; Lookup maps a request path to a file, a handler
// or a redirect.
package sites
