// Package link implements darkmatter links: authenticated, encrypted
// connections between two nodes that carry fixed-size cells for many
// circuits (spec/links.md is normative).
//
// A link runs over any reliable byte stream (a net.Conn: TCP, a QUIC
// stream, memnet in tests). [Dial] runs the initiator side against a
// responder whose static link key it knows; [Accept] runs the responder
// side; [Connect] is Dial plus the one redial a suite reject asks for. All
// return a [Link] once the handshake and the HELLO exchange are done. After
// that, [Link.Send] queues cells and a [Handler] receives them.
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
// # Preamble (initiator to responder, before any crypto, 14 bytes)
//
//	| "DMK" (3) | version (1) = 0x02 | network ID (8) | suite (1) | flags (1) |
//
// network ID = SHA-256("darkmatter network\x00" || network name)[:8].
// suite 0x01 = Noise_IK_25519_ChaChaPoly_BLAKE2s, 0x02 =
// Noise_IK_25519_AESGCM_BLAKE2s ([Suite]); flags bit 0 = retry after a
// suite reject ([FlagSuiteRetry]), other bits zero. The responder checks
// it first: a wrong magic is closed silently; another version, an unknown
// suite or flag gets a reject frame with reason 3; another network
// reason 1.
//
// # Suites
//
// ChaChaPoly is mandatory. An initiator with hardware AES proposes AESGCM
// (Config.Suite overrides). A responder without hardware AES answers an
// AESGCM preamble with reject reason 4 ("use ChaChaPoly"): Dial fails with
// [ErrSuiteRejected], and the caller redials once with Config.Suite =
// [SuiteChaChaPoly] and Config.SuiteRetry set ([Connect] does it). A
// responder with hardware AES never sends reason 4, so it refuses a retry
// as a forced downgrade (reason 2, [ErrDowngrade]); an initiator whose
// peer advertises LinkAES (Config.PeerPrefersAES) refuses reason 4 the
// same way. The preamble is in the Noise prologue, so a changed suite or
// flag fails message 1 (reason 2).
//
// # Handshake
//
// Noise IK with the preamble's suite (flynn/noise with crypto/noiseconf),
// prologue "darkmatter link v2\x00" || network name || preamble, empty
// payloads, so message 1 is 96 bytes and message 2 is 48. A responder that
// cannot read message 1 (the initiator expected another static key, or
// the preamble was changed) sends a reject frame with reason 2 and closes.
//
// # Frames
//
//	| length (2, big-endian) | Noise message (length) |
//
// A frame of length 0 is a reject frame, followed by one reason byte
// (1 network mismatch, 2 handshake failed, 3 bad version, suite or flags,
// 4 use ChaChaPoly); it is valid only before the handshake completes.
//
// # Transport messages
//
// Each transport message decrypts to 1..16 whole cells (cell.Size = 4085
// bytes each), so its length is n*4085 + 16 for n in 1..16, at most 65376:
//
//	| cell 1 (4085) | ... | cell n (4085) | tag (16) |
//	cell = | circuit ID (4) | command (1) | body (4080) |
//
// Nonces are the Noise counter, one per message and direction:
// 4 zero bytes and the counter as 8 bytes, little-endian for ChaChaPoly,
// big-endian for AESGCM. The first transport message each way is exactly
// one HELLO cell (circuit 0, body = length (2) | fields):
//
//	field = | type (1) | length (2) | value (length) |
//	type 1  protocols: the sender's protover set (required)
//	type 2  descriptor: the sender's signed relay descriptor (optional)
//
// Unknown field types are ignored; each type appears at most once. The
// link runs the highest Link version both protocol sets list ([LinkVersion]
// is ours), else it closes with [ErrVersion].
//
// A REKEY cell (command 9) is always the last cell of its message: after
// that message the sender's key, and after decrypting it the receiver's,
// becomes REKEY(k) = ENCRYPT(k, 2^64-1, "", 32 zero bytes)[:32] (Noise
// §11.3); the counter goes on. A side rekeys after Config.RekeyMessages
// messages or Config.RekeyInterval, whichever comes first.
//
// [Link.Move] continues the link on another connection to the same peer
// (both list LinkMove): each side writes a message holding a MOVE cell
// (command 13) as its last on the old connection and then writes on the
// new one; the reader switches after the peer's MOVE; the old connection
// closes once both have. The session goes on, so nothing above notices.
// [Link.MoveToken], from the handshake hash, lets the accepting side find
// the link a new connection belongs to (spec/links.md §5.4).
//
// PADDING cells are keepalives and are dropped. Cells of unknown commands
// are dropped and counted (Stats.UnknownCells), on any circuit. A second
// HELLO, a REKEY that is not last, a message that is not whole cells, a
// failed decryption or a frame longer than 65376 bytes closes the link with
// [ErrProtocol].
//
// # Queues and scheduling
//
// [Link.Send] queues a cell on its circuit's queue (circuit 0 holds the
// link's own cells); each circuit's cells go out in Send order, and the
// writer serves the circuits with queued cells round robin, one cell per
// turn, circuit 0 first when it becomes active, so a bulk circuit cannot
// starve an interactive one. Bounds (spec/links.md §6.1), all local
// policy: Config.MaxCircuitQueue per circuit (a Send beyond it fails with
// [ErrQueueFull] and the circuit is refused until a DESTROY);
// Config.MaxQueue per link and a node-wide [Budget] (Config.Budget), over
// which the circuits holding the oldest queued cells lose their queues and
// the Handler hears of it through [CircuitDropper]; and
// Config.StallTimeout, which closes a link whose oldest queued cell has
// waited that long ([ErrStalled]).
//
// # Goroutines and timers
//
// Each link has exactly one reader goroutine (which calls the Handler) and
// one writer goroutine; when either exits the other stops, and
// Handler.Closed is called once, after every other Handler call. A short
// goroutine makes the [CircuitDropper] calls, never Send's caller. The
// writer takes up to 16 cells at a time from the queues, packs them into
// one Noise message (15 and the REKEY when one is due) and writes it, and
// owns the timers: a PADDING cell after KeepAlive without writes, a REKEY
// after RekeyInterval, [ErrIdle] after IdleTimeout without reads,
// [ErrWriteTimeout] after a write blocked for IdleTimeout. A timer of its
// own, set only while cells are queued, enforces StallTimeout. Cells come
// from the cell pool, queues and buffers are reused, so the data path does
// not allocate (a rekey allocates its new AEAD, once per 65536 messages by
// default).
//
// What this package does not do: it does not dial or listen (the caller
// brings the conn, or a dial func to Connect), does not decide which links
// to open or keep (a link manager does), does not parse or verify the HELLO
// descriptor (it hands the bytes over in [Link.PeerHello]) nor act on the
// peer's protocols beyond the Link version (callers read
// [Link.PeerProtocols]), does not look inside cells beyond the circuit ID
// and the command, does not destroy circuits (it drops their queued cells
// and tells the Handler), and has no flow control beyond refusing cells
// over its bounds ([ErrQueueFull]): circuits must limit what they send.
package link
