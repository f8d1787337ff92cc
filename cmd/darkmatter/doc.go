// Command darkmatter is the single darkmatter binary: run a relay, a local
// SOCKS5/HTTP proxy, an embedded test network, key generation and the
// end-to-end benchmark. Flags and files live here; the packages under
// overlay/, circuit/ and apps/ take typed configs.
package main
