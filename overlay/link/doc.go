// Package link implements darkmatter links: authenticated, encrypted
// connections between two nodes that carry fixed-size cells for many
// circuits (spec/links.md is normative).
//
// A link runs over any reliable byte stream (a net.Conn: TCP, a QUIC
// stream, memnet in tests). [Dial] runs the initiator side against a
// responder whose static link key it knows; [Accept] runs the responder
// side. Both return a [Link] once the handshake and the HELLO exchange are
// done. After that, [Link.Send] queues cells and a [Handler] receives them.
//
// # Protocol flow
//
//	initiator                                      responder
//	preamble | frame(IK msg 1)          ─────────▶ check preamble, then msg 1
//	                                    ◀───────── frame(IK msg 2) | frame(HELLO)
//	                                               (or a reject frame, then close)
//	frame(HELLO)                        ─────────▶
//	frame(cells) ...                    ◀────────▶ frame(cells) ...
//
// # Preamble (initiator to responder, before any crypto, 12 bytes)
//
//	| "DMK" (3) | version (1) = 0x01 | network ID (8) |
//
// network ID = SHA-256("darkmatter network\x00" || network name)[:8]. The
// responder checks it first: another network gets a reject frame with
// reason 1, another version reason 3, a wrong magic is closed silently.
//
// # Handshake
//
// Noise_IK_25519_ChaChaPoly_BLAKE2s (flynn/noise with crypto/noiseconf),
// prologue "darkmatter link v1\x00" || network name, empty payloads, so
// message 1 is 96 bytes and message 2 is 48. A responder that cannot read
// message 1 (the initiator expected another static key) sends a reject
// frame with reason 2 and closes.
//
// # Frames
//
//	| length (2, big-endian) | Noise message (length) |
//
// A frame of length 0 is a reject frame, followed by one reason byte
// (1 network mismatch, 2 handshake failed, 3 bad version); it is valid only
// before the handshake completes.
//
// # Transport messages
//
// Each transport message decrypts to 1..16 whole cells (cell.Size = 4085
// bytes each), so its length is n*4085 + 16 for n in 1..16, at most 65376:
//
//	| cell 1 (4085) | ... | cell n (4085) | tag (16) |
//	cell = | circuit ID (4) | command (1) | body (4080) |
//
// Nonces are the Noise counter, one per message and direction. The first
// transport message each way is exactly one HELLO cell (circuit 0, body =
// length (2) | payload, the sender's relay descriptor or empty). PADDING
// cells are keepalives and are dropped. A second HELLO, a message that is
// not whole cells, an unknown command, a failed decryption or a frame
// longer than 65376 bytes closes the link with [ErrProtocol].
//
// # Goroutines and timers
//
// Each link has exactly one reader goroutine (which calls the Handler) and
// one writer goroutine; when either exits the other stops, and
// Handler.Closed is called once. The writer drains the whole send queue
// on each wake-up, packs up to 16 cells per Noise message and up to 256 KiB
// of frames per conn.Write, and owns the timers: a PADDING cell after
// KeepAlive without writes, [ErrIdle] after IdleTimeout without reads,
// [ErrWriteTimeout] after a write blocked for IdleTimeout. Cells come from
// the cell pool and buffers are reused, so the data path does not allocate.
//
// What this package does not do: it does not dial or listen (the caller
// brings the conn), does not decide which links to open or keep (a link
// manager does), does not parse or verify the HELLO descriptor (it hands
// the bytes over in [Link.PeerHello]), does not look inside cells beyond
// the command, and has no flow control beyond refusing cells while its queue
// is full ([ErrQueueFull]): circuits must limit what they send.
package link
