// Command darkmatter is the single darkmatter binary: run a relay, a local
// SOCKS5/HTTP proxy, an embedded test network, key generation and the
// end-to-end benchmark. Flags and files live here; the packages under
// overlay/, circuit/ and apps/ take typed configs. Every flag can also be
// set by an environment variable DARKMATTER_<FLAG> or a TOML config file
// (config.go; precedence command line > environment > file > default).
package main
