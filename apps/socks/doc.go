// Package socks is darkmatter's client-side SOCKS5 front end (RFC 1928, with
// the username/password method of RFC 1929). Applications point their SOCKS5
// setting at a [Server]; every CONNECT becomes one stream through the
// overlay, opened by the [Dialer] the Server was given.
//
// What it does:
//   - Method negotiation: "no authentication" (0x00) and "username/password"
//     (0x02). When the client offers 0x02 it is chosen, and every
//     username/password pair is accepted: the pair is not a secret, it is the
//     stream-isolation key (like Tor's IsolateSOCKSAuth). Streams whose
//     credentials differ never share a circuit.
//   - CONNECT to an IPv4 address, an IPv6 address or a domain name. Domain
//     names are passed to the Dialer unresolved; the exit resolves them.
//     Names that must never leave the client (.dark, .onion, .alt,
//     localhost, .local, home.arpa, .internal; spec/streams.md §7) are
//     refused without asking the Dialer: a mistyped .dark address or
//     name with 0xF6, the others with 0x04 host unreachable. A valid .dark
//     address goes to the Dialer, which reaches the hidden service itself
//     (the name never leaves the node); its failures answer 0xF0–0xF7. A
//     valid .dark name (its label before .dark does not have the 56 bytes
//     of an address; spec/names.md) goes to the Dialer too, which resolves
//     it through the network; a name nobody registered answers 0xF0.
//   - After a successful reply, bytes are copied both ways until both sides
//     are done. A half-close (EOF one way) is passed on with CloseWrite (an
//     END one way on a circuit stream), so a client that sends its request
//     and shuts its write side still gets the whole response; where the
//     stream cannot half-close, the client's EOF closes both connections.
//
// What it does not do:
//   - It never resolves a host name and never opens a connection itself:
//     there is no fallback to a direct connection, ever.
//   - No BIND, no UDP ASSOCIATE (both are answered 0x07), no SOCKS4/4a
//     (the connection is closed), no Tor RESOLVE extensions, no GSSAPI.
//   - It does not check credentials, and it does not decide which circuit a
//     stream uses: it only hands the isolation key to the Dialer.
//   - It logs no addresses in clear: targets go through safelog.S.
//
// # Isolation key
//
//	no authentication         ""
//	username/password (u, p)  "socks5:" + len(u) + ":" + u + len(p) + ":" + p
//
// with the lengths in decimal, so ("a", "bc") and ("ab", "c") give different
// keys ("socks5:1:a2:bc" and "socks5:2:ab1:c"), and an empty pair
// ("socks5:0:0:") differs from no authentication.
//
// # Wire format (RFC 1928, RFC 1929)
//
// Greeting, client to server, read by [ReadGreeting]:
//
//	VER      1 byte   0x05
//	NMETHODS 1 byte
//	METHODS  NMETHODS bytes
//
// Method selection, server to client: VER 0x05, METHOD 1 byte (0xFF: none
// acceptable, then the server closes).
//
// Username/password, client to server, read by [ReadUserPass]:
//
//	VER      1 byte   0x01
//	ULEN     1 byte
//	UNAME    ULEN bytes
//	PLEN     1 byte
//	PASSWD   PLEN bytes
//
// answered with VER 0x01, STATUS 0x00 (always success).
//
// Request, client to server, read by [ReadRequest]:
//
//	VER      1 byte   0x05
//	CMD      1 byte   0x01 CONNECT, 0x02 BIND, 0x03 UDP ASSOCIATE
//	RSV      1 byte   ignored
//	ATYP     1 byte   0x01 IPv4, 0x03 domain name, 0x04 IPv6
//	DST.ADDR 4 bytes, or 1 length byte + that many bytes, or 16 bytes
//	DST.PORT 2 bytes  big endian
//
// Reply, server to client, written by [WriteReply]:
//
//	VER 0x05, REP 1 byte, RSV 0x00, ATYP 0x01, BND.ADDR 0.0.0.0, BND.PORT 0
//
// BND.ADDR/BND.PORT are always zero, so a reply never reveals an address.
//
// A domain name must be 1 to 255 bytes of letters, digits, '-', '.' and '_',
// or an IP address literal (which is then treated as that address). Anything
// else is answered 0x01.
//
// # Protocol flow
//
//	client                              server
//	greeting            ------------>
//	                    <------------   method selection
//	[username/password  ------------>
//	                    <------------   status 0x00]
//	request             ------------>   Dialer.DialStream(target, isolation)
//	                    <------------   reply (0x00 on success)
//	data                <===========>   data (until both sides are done)
//
// HandshakeTimeout (5 s by default) bounds everything before DialStream,
// from the accept to the end of the request, however the client spreads
// its bytes; DialTimeout bounds DialStream. Neither applies to the data
// phase.
//
// # Reply codes
//
// A failed request or DialStream is answered with one reply code, then the
// connection is closed. [ReplyCode] maps a dial error:
//
//	error                                   REP
//	specialname mistyped .dark address      0xF6 onion service invalid address (Tor extension)
//	  or name (IsMistyped: ErrBadName, ...)
//	hserr DescriptorNotFound                0xF0 onion service descriptor not found (Tor extension)
//	specialname ErrNameNotFound             0xF0 (a name nobody registered: nothing to reach)
//	specialname ErrHiddenService            0xF0 (not returned by the node, which reaches the service)
//	specialname ErrName                     0x04 host unreachable (not returned by the node, which resolves the name)
//	hserr DescriptorInvalid                 0xF1 onion service descriptor is invalid
//	hserr IntroFailed                       0xF2 onion service introduction failed
//	hserr RendezvousFailed                  0xF3 onion service rendezvous failed
//	hserr ClientAuthMissing                 0xF4 onion service missing client authorization
//	hserr ClientAuthWrong                   0xF5 onion service wrong client authorization
//	hserr IntroTimeout                      0xF7 onion service introduction timed out
//	streamerr ExitPolicy                    0x02 connection not allowed by ruleset
//	streamerr Unreachable                   0x04 host unreachable
//	streamerr ResolveFailed                 0x04 host unreachable
//	streamerr ConnRefused                   0x05 connection refused
//	streamerr Timeout                       0x06 TTL expired
//	context.DeadlineExceeded (DialTimeout)  0x06 TTL expired
//	streamerr BadAddress                    0x01 general failure
//	streamerr NoExit, Destroyed, Misc,
//	  ProtocolError, ResourceLimit, Done,
//	  Unsupported, Closed,
//	  any other error                       0x01 general failure
//
// The mapping follows Tor's connection_edge_end_reason_socks5_response.
// 0xF0–0xF7 are Tor's extended SOCKS5 errors for onion services (Tor
// proposal 304; Tor sends them only with the ExtendedErrors port flag, a
// darkmatter proxy always does): 0xF6 tells the user the address or name
// itself is wrong, the others why a well-formed one could not be reached. A SOCKS5
// client that does not know them reports a failure all the same (RFC 1928
// defines success as 0x00 only).
// Errors found by the server itself:
//
//	request                                 REP
//	host under .dark, mistyped address      0xF6 onion service invalid address (no dial)
//	  (a label of 56 bytes before .dark:
//	  base32, version, checksum or key,
//	  spec/keys.md §3) or invalid name
//	  (any other length: spec/names.md §1)
//	host under .onion, .alt, .localhost,
//	  .local, home.arpa, .internal, or
//	  localhost                             0x04 host unreachable (no dial)
//	BIND, UDP ASSOCIATE, unknown command    0x07 command not supported
//	unknown ATYP                            0x08 address type not supported
//	malformed domain name, port 0           0x01 general failure
//	bad VER (SOCKS4 included)               none, the connection is closed
//
// No spec/ section is normative for this package yet; RFC 1928 and RFC 1929
// are.
package socks
