package quictr

import (
	"time"

	"github.com/quic-go/quic-go"
)

// ALPN is the TLS application protocol a darkmatter QUIC link negotiates
// (spec/links-quic.md §2). A peer offering anything else fails the
// handshake.
const ALPN = "darkmatter/1"

// Scheme names this transport in link addresses: "quic://host:port".
const Scheme = "quic"

// Defaults for Config's zero fields; spec/links-quic.md §4 explains them.
const (
	// DefaultMaxIdleTimeout closes a connection that has heard nothing from
	// its peer for this long.
	DefaultMaxIdleTimeout = 30 * time.Second
	// DefaultKeepAlivePeriod is half the idle timeout: a PING this often
	// keeps the connection and, as importantly, the NAT mappings along the
	// path alive (UDP mappings commonly expire after 30 s to 2 min).
	DefaultKeepAlivePeriod = 15 * time.Second
	// DefaultHandshakeTimeout bounds the QUIC handshake, and on the
	// listening side the wait for the dialer's stream preamble after it.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultStreamWindow is the most a link's stream may have in flight
	// towards us: 4 MiB covers about 320 Mbit/s at 100 ms RTT, the same
	// order as Linux's default TCP receive buffer limit (6 MiB).
	DefaultStreamWindow = 4 << 20
	// DefaultInitialWindow is the stream window a connection starts with
	// before auto-tuning grows it towards DefaultStreamWindow: what an
	// unaccepted or idle connection can make us buffer.
	DefaultInitialWindow = 256 << 10
	// DefaultBacklog bounds the connections a listener holds that Accept
	// has not yet returned: handshaking, waiting for the preamble, or
	// queued. More are refused with CONNECTION_REFUSED.
	DefaultBacklog = 32
	// DefaultBacklogPerHost bounds the same per remote IP address, so one
	// host cannot fill the backlog.
	DefaultBacklogPerHost = 4
	// DefaultLinger bounds how long a closed conn waits for the peer to
	// finish the stream before the QUIC connection is closed anyway.
	DefaultLinger = 10 * time.Second
)

// Config tunes a Transport. The zero value uses the defaults above.
type Config struct {
	MaxIdleTimeout   time.Duration // zero means DefaultMaxIdleTimeout
	KeepAlivePeriod  time.Duration // zero means DefaultKeepAlivePeriod; negative disables
	HandshakeTimeout time.Duration // zero means DefaultHandshakeTimeout
	StreamWindow     uint64        // zero means DefaultStreamWindow
	Backlog          int           // zero means DefaultBacklog
	BacklogPerHost   int           // zero means DefaultBacklogPerHost
	Linger           time.Duration // zero means DefaultLinger
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.MaxIdleTimeout, DefaultMaxIdleTimeout)
	def(&c.KeepAlivePeriod, DefaultKeepAlivePeriod)
	def(&c.HandshakeTimeout, DefaultHandshakeTimeout)
	def(&c.Linger, DefaultLinger)
	if c.KeepAlivePeriod < 0 {
		c.KeepAlivePeriod = 0
	}
	if c.StreamWindow == 0 {
		c.StreamWindow = DefaultStreamWindow
	}
	if c.Backlog <= 0 {
		c.Backlog = DefaultBacklog
	}
	if c.BacklogPerHost <= 0 {
		c.BacklogPerHost = DefaultBacklogPerHost
	}
	return c
}

// quicConfig returns the quic-go configuration. A listener's connections
// admit exactly one bidirectional stream from the peer, the link: the
// stream limit is also the close signal (conn.go, spec §3), and it means a
// peer flooding streams gets nowhere. A dialled connection admits none.
// Unidirectional streams and datagrams are off.
func (c Config) quicConfig(listen bool) *quic.Config {
	initial := min(uint64(DefaultInitialWindow), c.StreamWindow)
	streams := int64(-1)
	if listen {
		streams = 1
	}
	return &quic.Config{
		HandshakeIdleTimeout:           c.HandshakeTimeout,
		MaxIdleTimeout:                 c.MaxIdleTimeout,
		KeepAlivePeriod:                c.KeepAlivePeriod,
		InitialStreamReceiveWindow:     initial,
		MaxStreamReceiveWindow:         c.StreamWindow,
		InitialConnectionReceiveWindow: initial * 3 / 2,
		MaxConnectionReceiveWindow:     c.StreamWindow * 3 / 2,
		MaxIncomingStreams:             streams,
		MaxIncomingUniStreams:          -1,
	}
}
