// Package specialname recognises the host names that a client must never
// send to an exit: names that belong to darkmatter (hidden-service
// addresses and network names), to another naming system, or to the
// user's own machine or network. An exit would hand such a name to its
// DNS resolver, so sending it would leak it (a hidden-service address is
// as good as the service's key, a LAN name tells where the user is) and
// could only fail or reach the wrong host. spec/streams.md §7 is
// normative; spec/names.md §1 for the syntax of names.
//
// [Check] classifies a host:
//
//	host (any letter case,                 error               why
//	  trailing dots ignored)
//	<addr>.dark, *.<addr>.dark,             ErrHiddenService    a valid address (keys.ParseAddress accepts
//	  <addr> 56 bytes, a valid address                            the label before .dark); the node reaches it
//	<addr>.dark, *.<addr>.dark,             ErrAddressEncoding, a mistyped address: the check it fails
//	  <addr> 56 bytes, not an address       ...Version,         (spec/keys.md §3), in that order
//	                                        ...Checksum,
//	                                        ...Key
//	<name>.dark, the label before .dark     ErrName             a valid name (spec/names.md §1); the node
//	  not 56 bytes, <name> a valid name                           resolves it through the network
//	any other *.dark, dark                  ErrBadName          a mistyped name
//	*.onion, *.alt                          ErrForeignName      Tor's names (RFC 7686); non-DNS namespaces (RFC 9476)
//	localhost, *.localhost                  ErrLocalName        the user's own machine (RFC 6761 §6.3)
//	*.local                                 ErrLocalName        multicast DNS on the user's link (RFC 6762)
//	*.home.arpa                             ErrLocalName        the user's home network (RFC 8375)
//	*.internal                              ErrLocalName        private networks (ICANN, 2024)
//
// A host under .dark is classified by the length of its last label before
// .dark, so that a name can never be taken for an address: a name has no
// label of 56 bytes, the length of an address's label. Labels before a
// .dark address are ignored, as Tor ignores those before an onion
// address: www.<addr>.dark names the service <addr>.dark. A name is all
// the labels before .dark: blog.alice.dark is the name "blog.alice", and
// [Name] returns it in canonical form.
//
// The errors of a mistyped address or name wrap streamerr BadAddress (an
// address's also the crypto/keys error of the failed check), and
// [IsMistyped] reports them, so the proxies answer them as a mistyped
// address (SOCKS5 reply 0xF6, HTTP 400). Every other error wraps
// streamerr Unreachable. ErrHiddenService and ErrName are not refusals
// for the proxies: they pass such a target to their Dialer (the node);
// should the Dialer return one, they answer ErrHiddenService as a service
// they cannot reach (SOCKS5 0xF0, HTTP 502) and ErrName as an unreachable
// host (SOCKS5 0x04, HTTP 502). The node wraps its error for a name nobody registered in
// ErrNameNotFound, which the proxies answer like a hidden service whose
// descriptor is not found (SOCKS5 0xF0, HTTP 502). ErrForeignName and
// ErrLocalName are answered as an unreachable host (SOCKS5 0x04, HTTP
// 502). Every error's text names the rule, never the name.
//
// What it does not do:
//   - It does not look at IP literals: the exit policy decides about
//     addresses (spec/exit-policy.md), and a client may reach a loopback
//     address on purpose through an exit of a local test network.
//   - It does not refuse names that merely do not exist (.invalid, .test,
//     .example): sending them leaks nothing about the user.
//   - It compares names in ASCII only. A name with other bytes is not a
//     DNS name; the proxies refuse it before, and so must any other caller.
//     Under .dark such a host is a mistyped name (ErrBadName).
//   - It resolves nothing (neither addresses nor names, nor petnames:
//     the node does, spec/names.md) and keeps no state.
package specialname
