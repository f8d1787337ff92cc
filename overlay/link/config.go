package link

import (
	"crypto/rand"
	"fmt"
	"io"
	"time"

	"github.com/darkmatter/darkmatter/circuit/protover"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/defaults"
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

	// Hello is the descriptor field of the HELLO we send right after the
	// handshake: a relay's signed descriptor, which the link does not
	// parse; nil (a client) sends none. Together with Protocols it must
	// fit in one HELLO cell: MaxHelloLen bytes of fields, so Hello can
	// have MaxHelloLen - 2*HelloFieldHeaderLen - the protocols' wire size.
	Hello []byte

	// Protocols is the node's subprotocol versions (spec/protover.md),
	// sent in HELLO; the zero value is fine for a client. The link adds
	// its own entries itself (see Protocols: Link, and LinkAES on a
	// machine with hardware AES). It must not list Link versions above
	// LinkVersion.
	Protocols protover.Set

	// Suite is the cipher suite Dial proposes. Zero means SuiteAESGCM on
	// a machine with hardware AES, else SuiteChaChaPoly. Accept ignores
	// it: a responder accepts both suites, but one without hardware AES
	// answers an AESGCM proposal with a "use ChaChaPoly" reject, which
	// makes Dial fail with ErrSuiteRejected (see Connect).
	Suite Suite

	// SuiteRetry marks Dial's second attempt after ErrSuiteRejected: it
	// sets the preamble's retry flag and proposes ChaChaPoly (Suite must
	// be zero or SuiteChaChaPoly). A responder with hardware AES, which
	// never asks for a retry, refuses such a dial as a forced downgrade.
	SuiteRetry bool

	// PeerPrefersAES tells Dial that the responder's signed descriptor
	// lists LinkAES (protover.LinkAES): it has hardware AES and never
	// asks for ChaChaPoly. A "use ChaChaPoly" reject then comes from a
	// man in the middle, and Dial fails with ErrDowngrade instead of
	// ErrSuiteRejected.
	PeerPrefersAES bool

	// RekeyMessages is how many transport messages a side sends before it
	// rekeys its sending cipher (a REKEY cell ends the last of them); zero
	// means DefaultRekeyMessages (65536).
	RekeyMessages int

	// RekeyInterval is the longest a sending key stays in use: a side
	// that has not rekeyed for this long sends a REKEY; zero means
	// DefaultRekeyInterval (1h).
	RekeyInterval time.Duration

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

	// MaxQueue bounds the cells queued on the link, all circuits
	// together (spec/links.md §6.1). A Send that finds it reached drops the
	// queued cells of the link's circuit with the oldest queued cell and
	// tells the Handler (CircuitDropper); if that circuit is the Send's
	// own, the Send fails with ErrQueueFull. Zero means DefaultMaxQueue
	// (16384, about 64 MiB).
	MaxQueue int

	// MaxCircuitQueue bounds the cells queued for one circuit: a Send
	// beyond it drops the cell and returns ErrQueueFull, and the link
	// stays open. It must exceed a circuit window plus the control cells
	// that go with it; zero means DefaultMaxCircuitQueue (1088).
	MaxCircuitQueue int

	// StallTimeout closes the link with ErrStalled once a queued cell has
	// waited this long to be written, freeing everything it queued; zero
	// means DefaultStallTimeout (30s).
	StallTimeout time.Duration

	// Budget, when set, is the node-wide bound on queued cells that this
	// link shares with the node's other links (NewBudget); nil means no
	// budget beyond MaxQueue per link.
	Budget *Budget

	// Rand is the source of the ephemeral (and, when Static is nil, the
	// static) keys; nil means crypto/rand. Tests set it to get
	// reproducible handshakes.
	Rand io.Reader

	// Logf receives debug logs; nil is silent. Addresses and keys are
	// logged only through safelog.S.
	Logf safelog.Logf

	// hardwareAES, when set, replaces hasHardwareAES for this side, so a
	// test can run sides with and without AES in one process.
	hardwareAES func() bool
}

// settings is a Config with the defaults filled in.
type settings struct {
	network          string
	netID            [NetworkIDLen]byte
	static           *keys.LinkPrivateKey
	hello            []byte // our HELLO payload: all fields
	protocols        protover.Set
	suite            Suite // what Dial proposes
	flags            byte  // the preamble flags Dial sends
	hwAES            bool
	peerPrefersAES   bool
	keepAlive        time.Duration
	idleTimeout      time.Duration
	handshakeTimeout time.Duration
	maxQueue         int
	maxCircQueue     int
	stallTimeout     time.Duration
	budget           *Budget
	rekeyMessages    int
	rekeyInterval    time.Duration
	rand             io.Reader
	logf             safelog.Logf
}

// WithDefaults returns c with each zero (or negative) timeout, queue bound
// and rekey interval replaced by its default, as a link made with c uses
// them (status pages report these).
func (c Config) WithDefaults() Config {
	defaults.Set(&c.KeepAlive, DefaultKeepAlive)
	defaults.Set(&c.IdleTimeout, DefaultIdleTimeout)
	defaults.Set(&c.HandshakeTimeout, DefaultHandshakeTimeout)
	defaults.Set(&c.MaxQueue, DefaultMaxQueue)
	defaults.Set(&c.MaxCircuitQueue, DefaultMaxCircuitQueue)
	defaults.Set(&c.StallTimeout, DefaultStallTimeout)
	defaults.Set(&c.RekeyMessages, DefaultRekeyMessages)
	defaults.Set(&c.RekeyInterval, DefaultRekeyInterval)
	return c
}

func (c *Config) settings() (*settings, error) {
	if c == nil {
		c = &Config{}
	}
	s := &settings{
		network:          c.Network,
		static:           c.Static,
		suite:            c.Suite,
		peerPrefersAES:   c.PeerPrefersAES,
		keepAlive:        c.KeepAlive,
		idleTimeout:      c.IdleTimeout,
		handshakeTimeout: c.HandshakeTimeout,
		maxQueue:         c.MaxQueue,
		maxCircQueue:     c.MaxCircuitQueue,
		stallTimeout:     c.StallTimeout,
		budget:           c.Budget,
		rekeyMessages:    c.RekeyMessages,
		rekeyInterval:    c.RekeyInterval,
		rand:             c.Rand,
		logf:             c.Logf,
	}
	if s.network == "" {
		s.network = DefaultNetwork
	}
	s.netID = NetworkID(s.network)
	if c.hardwareAES != nil {
		s.hwAES = c.hardwareAES()
	} else {
		s.hwAES = hasHardwareAES()
	}
	if v := c.Protocols.Max(protover.Link); v > LinkVersion {
		return nil, fmt.Errorf("link: Config.Protocols lists Link version %d, this package speaks up to %d", v, LinkVersion)
	}
	s.protocols = withOwnProtocols(c.Protocols, s.hwAES)
	s.hello = appendHello(nil, hello{protocols: s.protocols, descriptor: c.Hello})
	if len(s.hello) > MaxHelloLen {
		return nil, fmt.Errorf("link: Config.Hello (%d bytes) and Config.Protocols make a HELLO of %d bytes, more than %d",
			len(c.Hello), len(s.hello), MaxHelloLen)
	}
	switch {
	case c.SuiteRetry && s.suite == SuiteAESGCM:
		return nil, fmt.Errorf("link: Config.SuiteRetry needs Suite ChaChaPoly")
	case c.SuiteRetry:
		s.suite, s.flags = SuiteChaChaPoly, FlagSuiteRetry
	case s.suite == 0 && s.hwAES:
		s.suite = SuiteAESGCM
	case s.suite == 0:
		s.suite = SuiteChaChaPoly
	case !s.suite.known():
		return nil, fmt.Errorf("link: unknown Config.Suite %v", s.suite)
	}
	if s.keepAlive < 0 || s.idleTimeout < 0 || s.handshakeTimeout < 0 || s.maxQueue < 0 ||
		s.maxCircQueue < 0 || s.stallTimeout < 0 || s.rekeyMessages < 0 || s.rekeyInterval < 0 {
		return nil, fmt.Errorf("link: negative duration, count or queue size in Config")
	}
	d := c.WithDefaults()
	s.keepAlive, s.idleTimeout, s.handshakeTimeout = d.KeepAlive, d.IdleTimeout, d.HandshakeTimeout
	s.maxQueue, s.maxCircQueue, s.stallTimeout = d.MaxQueue, d.MaxCircuitQueue, d.StallTimeout
	s.rekeyMessages, s.rekeyInterval = d.RekeyMessages, d.RekeyInterval
	if s.rand == nil {
		s.rand = rand.Reader
	}
	return s, nil
}

// preamble returns the preamble Dial sends.
func (s *settings) preamble() preamble {
	return preamble{version: PreambleVersion, netID: s.netID, suite: s.suite, flags: s.flags}
}
