// Package control is the control socket of a running darkmatter node: the
// local channel through which `darkmatter status` asks a relay, proxy or
// testnet what it is doing.
//
// # Socket
//
// The running command listens on the unix socket SocketName ("control.sock")
// in its data directory, created with mode 0600. Listen refuses a data
// directory that is not a directory owned by the current user, or that
// group or others can write (they could replace the socket), and creates
// a missing one with mode 0700. If the socket already exists, Listen dials
// it: a live socket means another node uses this data directory, and Listen
// refuses to start (ErrInUse); a dead one is stale (its node died without
// removing it) and is replaced. A file there that is not a socket is never
// removed.
//
// # Protocol
//
// One request and one response per connection, each a single JSON object
// followed by a newline, in UTF-8:
//
//	client → server   {"cmd":"status","paths":false,"unsafe":false}
//	server → client   {"status":{...}}   or   {"error":"..."}
//
// then the server closes the connection. A request has these fields:
//
//   - cmd (string, required): "status", the only command today.
//   - paths (bool): list each open circuit's relays, not only its hop count.
//   - unsafe (bool): with paths, full relay IDs and addresses; without it
//     relay IDs are cut to their first 4 hex digits (RedactID), enough to
//     tell a few relays apart, not to name one among thousands. Addresses
//     and full node IDs never leave the server without unsafe.
//
// Unknown fields, trailing data after the object, a missing or unknown cmd
// are errors. The server reads at most MaxRequest bytes and waits at most
// Server.ReadTimeout (default 5 s) for the whole request, then answers
// within Server.WriteTimeout (default 5 s); it serves at most MaxConns
// connections at once and closes further ones at once. The socket is local
// and owner-only, but a stuck or buggy client still holds nothing for long.
// The client reads at most MaxResponse bytes of answer.
//
// The response's status object is Status: plain numbers and strings,
// ordered lists of limits and counters, so that new ones need no change to
// the client.
package control
