// Command gen builds the example modules with internal/wasmbuild and writes
// them gzip-compressed into the current directory: go generate runs it in
// apps/compute/examples/prebuilt, whose embeds it refreshes.
package main
