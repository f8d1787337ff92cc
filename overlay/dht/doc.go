// Package dht is a Kademlia DHT over relays, hardened after S/Kademlia,
// storing signed, size-limited, expiring records of registered types.
// spec/dht.md is normative.
//
// A Record (record.go) is an envelope: type, key, owner, sequence number,
// expiry, value and the owner's Ed25519 signature over the network name and
// every field. A Registry maps each type to its rules (maximum value size,
// maximum lifetime, and a Validate function that checks how the key is
// derived, so nobody can publish under a key that is not theirs). A record
// is verified completely when a node stores it and again when a lookup
// receives it; anything unverified is dropped and counted.
//
// Protocol flow (messages in message.go; every request has an ID its
// answer echoes):
//
//	PING              -> PONG
//	FIND_NODE(target) -> NODES(contacts)
//	FIND_VALUE(t,key) -> VALUE(records, contacts)
//	STORE(record)     -> STORED(status)
//
// The engine keeps a routing table of 256 k-buckets (at most
// MaxPerSubnetInBucket contacts of one IPv4 /24 or IPv6 /48 in a bucket;
// old live contacts are kept, newcomers wait as replacements). Lookups are
// iterative with α requests in flight on each of d disjoint paths: every
// node is queried by at most one path, and a path runs until every node
// of its termination set (the k nearest it knows, at most
// MaxPerSubnetInReplicas per /16) has answered, so nodes that ground IDs
// near a key inside one /16 fill at most two places of it. Records are
// stored on the k nearest eligible nodes under the same /16 rule, Put
// records are republished, stored records are re-replicated, expired ones
// purged.
//
// Vocabulary: a contact is a (NodeID, address) pair; a key is a point of
// the 256-bit space (record keys and lookup targets alike); the replica
// set of a key is the k nearest eligible diverse nodes; a path is one of
// the disjoint chains of a lookup.
//
// This package does NOT: open links or circuits (the node supplies a
// Transport, over links or through a circuit per call with the Via
// methods), decide which peers are old enough to store (Config.Eligible),
// frame messages into cells, or persist anything. MemNetwork is an
// in-memory Transport for tests and the simulator.
package dht
