// Package names is darkmatter's naming service, a DNS analogue in the
// DHT: a readable name such as blog.alice.dark maps to a .dark address,
// text, a module hash or a site key. spec/names.md is normative.
//
//	name         CanonicalName: lowercase [a-z0-9-] labels, 1..4 of them,
//	             never a 56-byte label, so never a key address
//	record       Record, Marshal/Parse: the value of DHT type 6 under
//	             Key(name), signed (as a dht.Record) by its owner
//	cost         Solve/CheckPoW: a BLAKE2b proof of work over the name,
//	             owner and registration time; renewals reuse it
//	rule         Spec/Register: the DHT type, Exclusive (first come,
//	             first served at every node), lifetime at most MaxTTL
//	choice       Resolve: among the replicas' answers, the owner most
//	             replicas hold
//	petnames     Petnames: a user's own names, which override the network
//
// Protocol flow:
//
//	owner:    rec := NewRecord(ctx, name, ownerKey, now, now+MaxTTL, difficulty, AddressEntry(svc))
//	          d := rec.DHTRecord(network, ownerPriv, seq); dht.Put(d)
//	          renew before expiry: same Registered and Nonce, later Expires, higher seq
//	resolver: petnames first; else answers of each replica of Key(name);
//	          Resolve(name, answers, verify)
//
// What it does not do: it runs no node, client, CLI or proxy (later parts
// of issue 15 do); it does not fetch from the DHT, so the caller gathers
// each replica's answers and bounds them; it has no IDN (non-ASCII names
// are refused); it does not log.
package names
