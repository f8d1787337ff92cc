// Package exitpolicy parses and evaluates exit policies: the rules an exit
// relay publishes in its descriptor to say which destinations it will open
// TCP connections to for BEGIN cells. spec/exit-policy.md is normative.
//
// A policy is a comma-separated list of rules, tried in order; the first
// rule that matches the destination address and port decides, and a
// destination no rule matches is rejected:
//
//	policy  = rule *( "," rule )
//	rule    = ( "accept" / "reject" ) 1*SP pattern [ ":" ports ]
//	pattern = "*" / "private" / IPv4 [ "/" bits ] / "[" IPv6 [ "/" bits ] "]"
//	ports   = "*" / port / port "-" port          ; 1..65535; absent means "*"
//
// Example: Default() is "reject private:*,accept *:*".
//
// "private" names every range the IANA special-purpose registries mark as
// not globally reachable (loopback, RFC 1918, carrier-grade NAT,
// link-local, unique-local, documentation, benchmarking, the IETF protocol
// assignment blocks, local-use NAT64 64:ff9b:1::/48), multicast, reserved,
// and the deprecated site-local and IPv4-compatible forms, in IPv4 and
// IPv6, including IPv4 addresses embedded in IPv4-mapped, NAT64
// (64:ff9b::/96) and 6to4 (2002::/16) IPv6 addresses; see IsPrivate. An
// IPv4-mapped IPv6 destination (::ffff:a.b.c.d) is evaluated as the IPv4
// address a.b.c.d.
//
// At an exit, "private" also covers the exit's own addresses, which it
// adds with WithOwnAddrs: a connection to them reaches the exit's own
// host, like loopback. They are not part of the policy's text.
//
// Policies are immutable once parsed and safe for concurrent use. String
// returns a canonical form, and Parse(p.String()) yields an equal policy.
//
// This package does NOT resolve host names (the exit resolves them and then
// asks Allows about each address), does NOT open connections, does NOT
// find the exit's own addresses (the exit lists them and passes them to
// WithOwnAddrs), and does NOT choose exits: clients use AllowsPort to find
// exits that may serve a port before the name is resolved.
package exitpolicy
