package link

import (
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
)

// Specification constants (spec/links.md). Changing any of them changes the
// wire protocol.
const (
	// PreambleVersion is the version byte of the preamble: the layout of
	// the preamble and the handshake (spec/links.md §2). What the link
	// does after the handshake is negotiated in HELLO instead (the Link
	// subprotocol, [LinkVersion]).
	PreambleVersion = 0x02
	// PreambleLen is the size of the preamble the initiator sends first:
	// magic (3) | version (1) | network ID (8) | suite (1) | flags (1).
	PreambleLen = 3 + 1 + NetworkIDLen + 1 + 1
	// NetworkIDLen is the size of the network ID in the preamble.
	NetworkIDLen = 8
	// FrameHeaderLen is the size of a frame's big-endian length field.
	FrameHeaderLen = 2
	// TagLen is the authentication tag at the end of every Noise message
	// (the same for both suites).
	TagLen = 16
	// MaxCellsPerMessage is the most cells one transport message carries.
	MaxCellsPerMessage = 16
	// MaxMessageLen is the largest transport message: 16 cells plus the tag
	// (65376 bytes, below Noise's 65535-byte limit).
	MaxMessageLen = MaxCellsPerMessage*cell.Size + TagLen
	// MinMessageLen is the smallest transport message: one cell plus the tag.
	MinMessageLen = cell.Size + TagLen
	// Msg1Len is the size of the IK handshake's first message with an
	// empty payload: e (32) | encrypted s (32+16) | encrypted payload (16).
	Msg1Len = 32 + 32 + TagLen + TagLen
	// Msg2Len is the size of the IK handshake's second message with an
	// empty payload: e (32) | encrypted payload (16).
	Msg2Len = 32 + TagLen
	// MaxHelloLen is the largest HELLO payload, all fields together (a
	// cell body minus its 2-byte length prefix).
	MaxHelloLen = cell.BodyLen - 2
	// HelloFieldHeaderLen is the type (1) and length (2) before each HELLO
	// field's value.
	HelloFieldHeaderLen = 3
	// LinkVersion is the highest version of the Link subprotocol
	// (protover.Link) this package speaks; a link runs the highest version
	// both HELLOs list.
	LinkVersion = 1
	// DefaultNetwork is the network name used when Config.Network is empty.
	DefaultNetwork = "darkmatter"
)

// Preamble flags (the last preamble byte). A responder rejects a preamble
// with any other bit set (RejectVersion).
const (
	// FlagSuiteRetry marks the initiator's second attempt after a
	// RejectSuite: it proposes ChaChaPoly because the responder asked for
	// it. A responder with hardware AES never asks, so it refuses such an
	// attempt as a forced downgrade.
	FlagSuiteRetry byte = 0x01

	knownFlags = FlagSuiteRetry
)

// Reject reasons: the byte after a reject frame (a frame of length 0).
const (
	RejectNetwork   byte = 1 // the preamble names a different network
	RejectHandshake byte = 2 // the first handshake message did not decrypt, or a forced downgrade
	RejectVersion   byte = 3 // the preamble names an unknown version, suite or flag
	RejectSuite     byte = 4 // use ChaChaPoly: the responder has no hardware AES
)

// HELLO field types (spec/links.md §5.1). Unknown types are ignored.
const (
	// HelloProtocols holds the sender's subprotocol versions in
	// protover wire form. Required.
	HelloProtocols byte = 1
	// HelloDescriptor holds the sender's signed relay descriptor.
	// Optional: clients send none.
	HelloDescriptor byte = 2
)

// Strings mixed into the preamble's network ID and the Noise prologue.
const (
	networkIDContext = "darkmatter network\x00"
	prologuePrefix   = "darkmatter link v2\x00"
	preambleMagic    = "DMK"
)

// Tuning constants: defaults and buffer sizes. These do not change the wire
// protocol.
const (
	DefaultKeepAlive        = 30 * time.Second
	DefaultIdleTimeout      = 3 * time.Minute
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultRekeyMessages    = 1 << 16
	DefaultRekeyInterval    = time.Hour

	// DefaultMaxQueue is the default bound on the cells queued on one
	// link, all circuits together (about 64 MiB): the backstop for a node
	// without a Budget; a relay's Budget is the bound that matters.
	DefaultMaxQueue = 16384

	// DefaultMaxCircuitQueue is the default bound on the cells queued
	// for one circuit on one link: two circuit windows (circuit.CircWindow,
	// 512 DATA cells) and one SENDME increment (64). An honest circuit
	// has at most one window of DATA in flight in each direction; the
	// second window is room for the cells windows do not count (circuit
	// and stream SENDMEs, BEGIN and END, DROP, cells for later hops), and
	// the increment for a SENDME that arrives while a window is queued.
	// A full queue is about 4.4 MiB.
	DefaultMaxCircuitQueue = 2*512 + 64

	// DefaultStallTimeout is how long a queued cell may wait to be
	// written before the link is closed as stalled (ErrStalled). An honest
	// link drains a full circuit window (2 MiB) well within it down to
	// about 70 KB/s; a peer that stops reading is cut off and all it held
	// is freed in 30 s, where the write timeout takes 3 minutes.
	DefaultStallTimeout = 30 * time.Second

	// DefaultBudget is the node-wide budget NewBudget(0) gives, in cells:
	// 65536 cells, 256 MiB. A 2-core relay forwards about 150-230 MB/s,
	// so this is more than a second of its full speed (queues beyond that
	// add only delay), or 128 circuits with a full window each, while a
	// relay on a 1-2 GiB machine keeps room for everything else.
	DefaultBudget = 65536

	// writeBatchCells is how many cells the writer takes from the queues
	// for one conn.Write: one full message, 64 KiB. A circuit that becomes
	// active waits for the rest of the message being written, so this
	// bounds what the scheduler cannot reorder: on a 10 MiB/s path an
	// interactive round trip next to a bulk circuit stays under 2x its
	// idle value, where 256 KiB per write made it 3x
	// (TestInteractiveFairness). On loopback, one message per write also
	// moved more than 256 KiB per write did (BenchmarkLinkThroughput):
	// the reader starts on a message sooner.
	writeBatchCells = MaxCellsPerMessage
	// writeBufLen is the capacity of a write buffer: one frame.
	writeBufLen = FrameHeaderLen + MaxMessageLen
	// readBufLen is the size of the reader's buffer: two whole frames, so
	// that one large Read usually brings in a frame and the next one's
	// start.
	readBufLen = 2 * (FrameHeaderLen + MaxMessageLen)
	// idleReadBufLen is the buffer a link reads into while nothing is
	// buffered: an idle link keeps only this much, and borrows a
	// readBufLen buffer from a pool while traffic flows.
	idleReadBufLen = 4 << 10
)
