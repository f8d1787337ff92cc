package link

import (
	"crypto/rand"
	"fmt"
	"io"
	"time"

	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/safelog"
)

// Config configures one side of a link. The zero value (or a nil *Config)
// is usable by a client; a responder needs Static. Dial and Accept do not
// modify the Config and do not keep it, so one Config can serve many links.
type Config struct {
	// Network is the name of the overlay network this node belongs to;
	// empty means DefaultNetwork ("darkmatter"). Nodes of different
	// networks cannot link: the responder refuses the preamble and both
	// sides fail with ErrNetworkMismatch. The name is also mixed into the
	// Noise prologue.
	Network string

	// Static is our Noise static key. nil means a fresh random key, which
	// suits a client that does not want to be recognised across links. A
	// responder (Accept) needs a Static key, because the initiator must
	// know its public half beforehand.
	Static *keys.LinkPrivateKey

	// Hello is the payload of the HELLO cell we send right after the
	// handshake (a relay sends its signed descriptor); nil means empty. At
	// most MaxHelloLen bytes.
	Hello []byte

	// KeepAlive is how long the link may go without writing before it sends
	// a PADDING cell; zero means DefaultKeepAlive (30s). It should be well
	// below the peer's IdleTimeout.
	KeepAlive time.Duration

	// IdleTimeout closes the link with ErrIdle when the peer sent nothing
	// for this long (a Read waited this long; time spent in our own
	// Handler does not count), and with ErrWriteTimeout when writes were
	// blocked for about this long (at least 3/4 of it); zero means
	// DefaultIdleTimeout (3m).
	IdleTimeout time.Duration

	// HandshakeTimeout bounds the handshake and HELLO exchange; zero means
	// DefaultHandshakeTimeout (10s). It applies together with the deadline
	// of the ctx passed to Dial or Accept: whichever comes first.
	HandshakeTimeout time.Duration

	// MaxQueue is how many cells may wait to be sent; a Send beyond it
	// drops the cell and returns ErrQueueFull, and the link stays open (the
	// caller sacrifices the circuit the cell belonged to, like Tor's
	// out-of-memory handler). Zero means DefaultMaxQueue (16384, about
	// 64 MiB).
	MaxQueue int

	// Rand is the source of the ephemeral (and, when Static is nil, the
	// static) keys; nil means crypto/rand. Tests set it to get
	// reproducible handshakes.
	Rand io.Reader

	// Logf receives debug logs; nil is silent. Addresses and keys are
	// logged only through safelog.S.
	Logf safelog.Logf
}

// settings is a Config with the defaults filled in.
type settings struct {
	network          string
	netID            [NetworkIDLen]byte
	static           *keys.LinkPrivateKey
	hello            []byte
	keepAlive        time.Duration
	idleTimeout      time.Duration
	handshakeTimeout time.Duration
	maxQueue         int
	rand             io.Reader
	logf             safelog.Logf
}

func (c *Config) settings() (*settings, error) {
	if c == nil {
		c = &Config{}
	}
	s := &settings{
		network:          c.Network,
		static:           c.Static,
		hello:            c.Hello,
		keepAlive:        c.KeepAlive,
		idleTimeout:      c.IdleTimeout,
		handshakeTimeout: c.HandshakeTimeout,
		maxQueue:         c.MaxQueue,
		rand:             c.Rand,
		logf:             c.Logf,
	}
	if s.network == "" {
		s.network = DefaultNetwork
	}
	s.netID = NetworkID(s.network)
	if len(s.hello) > MaxHelloLen {
		return nil, fmt.Errorf("link: Config.Hello is %d bytes, more than %d", len(s.hello), MaxHelloLen)
	}
	if s.keepAlive < 0 || s.idleTimeout < 0 || s.handshakeTimeout < 0 || s.maxQueue < 0 {
		return nil, fmt.Errorf("link: negative duration or queue size in Config")
	}
	if s.keepAlive == 0 {
		s.keepAlive = DefaultKeepAlive
	}
	if s.idleTimeout == 0 {
		s.idleTimeout = DefaultIdleTimeout
	}
	if s.handshakeTimeout == 0 {
		s.handshakeTimeout = DefaultHandshakeTimeout
	}
	if s.maxQueue == 0 {
		s.maxQueue = DefaultMaxQueue
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	return s, nil
}
