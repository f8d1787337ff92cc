// Package hserr names why a hidden service could not be reached, with the
// extended SOCKS5 reply Tor defines for each reason (0xF0–0xF7, Tor
// proposal 304), so that the node that fails (overlay/onion) and the
// proxies that answer (apps/socks, apps/httpproxy) agree without importing
// each other. spec/streams.md §7 lists the reasons and their answers.
package hserr
