// Package sim is the simulator behind `darkmatter sim`: it runs the real
// discovery engines of N relays in one process and measures how they
// scale (issue 12).
//
// Two experiments run per network size:
//
//   - Gossip (spec/gossip.md): N directories (dir.Directory) exchange the
//     real GOSSIP cells over an in-memory wire, in simulated rounds of
//     the relay gossip interval (overlay.DefaultGossip, 30 s). Every
//     relay bootstraps from relay 0, as the Node does: a link to it, whose
//     HELLOs give each side the other's descriptor (AddFrom and Confirm,
//     like the Node's LinkUp). Each round every relay, in a random order
//     (the Node's timers are jittered, so rounds interleave), runs
//     dir.Sync with Fanout random relays of its directory, linking to
//     them first if it has no link yet. Byte counts are cells on the
//     wire (cell.Size each). The experiment ends when every relay knows
//     every relay, or after MaxRounds, or when StallRounds rounds taught
//     nobody anything.
//   - DHT (spec/dht.md): N dht.DHT servers on a dht.MemNetwork, each
//     seeded with every relay of the directory (AddContact, as the Node's
//     seedDHT does). Records are Put from random relays, then a fraction
//     of the relays leaves (Detach) and as many new ones join; every live
//     node runs one Maintain (refresh, republish, replicate) and random
//     live nodes Get random records.
//
// With Config.Workers 1 the gossip experiment runs on one goroutine, so a
// fixed Seed gives the same gossip run every time; the DHT's lookups fan
// out on goroutines of their own and draw message IDs at random.
package sim
