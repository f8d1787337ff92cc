// Package natlab is test support: a lab of Linux network namespaces joined
// by veth pairs, with routers doing NAT in the kernel (iptables
// MASQUERADE), for testing package nat's STUN probe and hole punching
// against real conntrack instead of the in-memory nat/natsim.
//
// Topology of a [Lab] (TEST-NET and private addresses only; nothing leaves
// the namespaces the lab creates):
//
//	              public namespace, bridge br0
//	     203.0.113.1 (STUN primary), 203.0.113.2 (STUN alternate IP)
//	         |                                       |
//	wan 203.0.113.10                          wan 203.0.113.20
//	     router A  (MASQUERADE)                 router B  (MASQUERADE)
//	lan 192.168.1.1                           lan 192.168.2.1
//	         |                                       |
//	eth0 192.168.1.2                          eth0 192.168.2.2
//	     home A                                  home B
//
// Each router forwards, masquerades what leaves by wan (with
// --random-fully when its [NAT] is [RandomFully], which gives a new random
// port to every conntrack entry: a symmetric NAT) and, like a home router,
// drops unsolicited packets to itself from wan. [Lab.ListenPacket] opens a
// UDP socket inside one of the namespaces from the test process,
// [Lab.Listen] a TCP listener and [Lab.DialContext] a connection;
// [Lab.Command] runs a program (a relay, a proxy) inside one, so whole
// processes can be tested behind the routers.
//
// [New] needs root, the ip and iptables commands, and a kernel that lets it
// create network namespaces; otherwise it skips the test, or fails it when
// the environment variable DARKMATTER_NATLAB is "require" (for CI runners
// that must run the lab). It removes the namespaces in t.Cleanup, also when
// the test fails.
//
// What it does not do: IPv6, hairpinning, several levels of NAT, packet
// loss or delay, or anything outside Linux.
package natlab
