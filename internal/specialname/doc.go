// Package specialname recognises the host names that a client must never
// send to an exit: names that belong to darkmatter's hidden services, to
// another naming system, or to the user's own machine or network. An exit
// would hand such a name to its DNS resolver, so sending it would leak it
// (a hidden-service address is as good as the service's key, a LAN name
// tells where the user is) and could only fail or reach the wrong host.
// spec/streams.md §7 is normative.
//
// [Check] classifies a host:
//
//	name (last label, any letter case,     error               why
//	  trailing dots ignored)
//	<addr>.dark, *.<addr>.dark,             ErrHiddenService    a valid address (keys.ParseAddress accepts
//	  <addr> a valid address                                      the label before .dark); not reachable yet
//	any other *.dark, dark                  ErrAddressLength,   a mistyped address: the check it fails
//	                                        ...Encoding,        (spec/keys.md §3), in that order
//	                                        ...Version,
//	                                        ...Checksum,
//	                                        ...Key
//	*.onion, *.alt                          ErrForeignName      Tor's names (RFC 7686); non-DNS namespaces (RFC 9476)
//	localhost, *.localhost                  ErrLocalName        the user's own machine (RFC 6761 §6.3)
//	*.local                                 ErrLocalName        multicast DNS on the user's link (RFC 6762)
//	*.home.arpa                             ErrLocalName        the user's home network (RFC 8375)
//	*.internal                              ErrLocalName        private networks (ICANN, 2024)
//
// Labels before a .dark address are ignored, as Tor ignores those before
// an onion address: www.<addr>.dark names the service <addr>.dark.
//
// The errors of a mistyped address wrap streamerr BadAddress and the
// crypto/keys error of the failed check, and [IsMistyped] reports them, so
// the proxies answer them as a mistyped address (SOCKS5 reply 0xF6, HTTP
// 400). Every other error wraps streamerr Unreachable; the proxies answer
// ErrHiddenService as a service they cannot reach (SOCKS5 0xF0, HTTP 502)
// and the others as an unreachable host (SOCKS5 0x04, HTTP 502). Every
// error's text names the rule, never the name.
//
// What it does not do:
//   - It does not look at IP literals: the exit policy decides about
//     addresses (spec/exit-policy.md), and a client may reach a loopback
//     address on purpose through an exit of a local test network.
//   - It does not refuse names that merely do not exist (.invalid, .test,
//     .example): sending them leaks nothing about the user.
//   - It compares names in ASCII only. A name with other bytes is not a
//     DNS name; the proxies refuse it before, and so must any other caller.
//   - It resolves nothing and keeps no state.
package specialname
