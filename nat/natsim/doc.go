// Package natsim is an in-process network with NAT boxes, for testing STUN,
// NAT classification and hole punching without kernel sockets (modelled on
// tailscale's tstest/natlab).
//
// A [Network] is the public internet: a flat space of IP addresses. A
// public [Host] owns one or more of those addresses; a [NAT] owns one and
// hides a private LAN of hosts behind it. Every host opens UDP-like
// [net.PacketConn]s with [Host.ListenPacket]. Packets live in memory, are
// delivered synchronously into a bounded per-socket queue and are dropped
// when it is full or when nothing listens on the destination.
//
// A NAT translates outbound packets with one of the three mapping
// behaviours of RFC 4787 §4.1 ([EndpointIndependent], [AddressDependent],
// [AddressAndPortDependent]: the last is the "symmetric" NAT, a new public
// port per destination) and admits inbound packets with one of the three
// filtering behaviours of RFC 4787 §5. Mappings expire after an idle
// timeout measured on the NAT's clock (NATConfig.Now, time.Now by default;
// tests may inject one, or run under testing/synctest). Outbound traffic
// refreshes a mapping; inbound traffic does not (RFC 4787 REQ-6 allows
// either).
//
// The PacketConns follow net.PacketConn: they are safe for concurrent use,
// honour read and write deadlines (errors satisfy os.ErrDeadlineExceeded and
// net.Error.Timeout), and after Close every call fails with an error that
// matches net.ErrClosed.
//
// What it does not do: hairpinning through the public address, ICMP, packet
// loss or reordering (other than drops on full queues), fragmentation,
// TCP, IPv6 routing subtleties (addresses of either family are just keys),
// port-preservation heuristics, or several levels of NAT.
package natsim
