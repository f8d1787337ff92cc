package hs

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/flynn/noise"

	"github.com/darkmatter/darkmatter/crypto/hsblind"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/crypto/noiseconf"
)

// Specification constants (spec/hidden-services.md §4).
const (
	// CookieLen is the size of a rendezvous cookie (cell.CookieLen).
	CookieLen = 20
	// IntroPlaintextLen is the fixed size of the introduce plaintext in
	// message 1, padded with zeros.
	IntroPlaintextLen = 512
	// ReplyLen is the size of message 2, the JOIN payload: e (32) ‖
	// encrypted empty payload (16).
	ReplyLen = 32 + 16
	// IntroduceVersion is the first byte of the INTRODUCE1 encrypted part.
	IntroduceVersion = 1
	// Msg1Len is the size of Noise message 1: e (32) ‖ encrypted (KEM
	// ciphertext ‖ introduce plaintext) ‖ tag (16).
	Msg1Len = 32 + keys.KEMCiphertextSize + IntroPlaintextLen + 16
	// IntroduceLen is the size of the INTRODUCE1 encrypted part: version ‖
	// message 1 (1649 bytes).
	IntroduceLen = 1 + Msg1Len

	hsProloguePrefix = "darkmatter hs v1\x00"
	// introFixedLen is the introduce plaintext before the extensions:
	// cookie (20) ‖ rendezvous (32) ‖ effort (4) ‖ nonce (16) ‖ ext count (1).
	introFixedLen = CookieLen + keys.NodeIDSize + 4 + 16 + 1
	// maxNetworkLen is the longest network name: its length is one byte.
	maxNetworkLen = 255
)

// Errors. Every error that ServiceAccept and Finish return for a bad
// message matches ErrMalformed or ErrHandshake (others report bad
// arguments: missing secrets, a network name over 255 bytes); every error
// of OpenDescriptor matches ErrNotAuthorised or ErrBadDescriptor.
var (
	// ErrNotAuthorised means the descriptor is for authorised clients only,
	// and the client has no key or one the service did not list.
	ErrNotAuthorised = errors.New("hs: not authorised to read this descriptor")
	// ErrBadDescriptor means a descriptor value did not decrypt or parse:
	// another period, network or service, or a modified value.
	ErrBadDescriptor = errors.New("hs: bad descriptor")
	// ErrHandshake means a handshake message failed to authenticate: wrong
	// keys, network, identity, blinded or auth key, a modified message, or
	// a low-order X25519 key.
	ErrHandshake = errors.New("hs: handshake failed")
	// ErrMalformed means a message has the wrong size, version or layout.
	ErrMalformed = errors.New("hs: malformed message")
)

// Intro is what a client tells the service in message 1's payload.
type Intro struct {
	// Cookie is the rendezvous cookie the client registered at Rendezvous.
	Cookie [CookieLen]byte
	// Rendezvous is the relay where the client waits (JOIN_ESTABLISH).
	Rendezvous keys.NodeID
	// PoWEffort and PoWNonce are the client's proof of work (§6); effort 0
	// means none.
	PoWEffort uint32
	PoWNonce  [16]byte
}

// Target is what a client knows of the service for one introduction: the
// address's identity key, the blinded key of the period, and from the
// descriptor the introduction point's auth key and the service's enc and
// KEM keys.
type Target struct {
	Network  string
	Identity keys.ServicePublicKey
	Blinded  hsblind.BlindedPublicKey
	AuthKey  [32]byte
	Enc      [32]byte
	KEM      *keys.KEMPublicKey
}

// prologue is "darkmatter hs v1\x00" ‖ len(network) (1) ‖ network ‖
// identity (32) ‖ blinded (32) ‖ auth key (32).
func prologue(network string, id keys.ServicePublicKey, blinded hsblind.BlindedPublicKey, authKey [32]byte) ([]byte, error) {
	if len(network) > maxNetworkLen {
		return nil, fmt.Errorf("hs: network name is %d bytes, at most %d", len(network), maxNetworkLen)
	}
	p := make([]byte, 0, len(hsProloguePrefix)+1+len(network)+3*32)
	p = append(p, hsProloguePrefix...)
	p = append(p, byte(len(network)))
	p = append(p, network...)
	p = append(p, id[:]...)
	p = append(p, blinded[:]...)
	return append(p, authKey[:]...), nil
}

// appendIntro appends the IntroPlaintextLen-byte introduce plaintext:
// cookie ‖ rendezvous ‖ effort ‖ nonce ‖ ext count (0) ‖ zero padding.
func appendIntro(b []byte, in Intro) []byte {
	start := len(b)
	b = append(b, in.Cookie[:]...)
	b = append(b, in.Rendezvous[:]...)
	b = binary.BigEndian.AppendUint32(b, in.PoWEffort)
	b = append(b, in.PoWNonce[:]...)
	b = append(b, 0) // no extensions
	return append(b, make([]byte, IntroPlaintextLen-(len(b)-start))...)
}

// parseIntro parses an introduce plaintext. Extensions, type (1) ‖ length
// (1) ‖ body, are skipped (version 1 defines none); they must fit. The
// padding after them is ignored.
func parseIntro(p []byte) (Intro, error) {
	var in Intro
	if len(p) != IntroPlaintextLen {
		return in, ErrMalformed
	}
	copy(in.Cookie[:], p)
	p = p[CookieLen:]
	copy(in.Rendezvous[:], p)
	p = p[keys.NodeIDSize:]
	in.PoWEffort = binary.BigEndian.Uint32(p)
	copy(in.PoWNonce[:], p[4:])
	n := int(p[20])
	p = p[21:]
	for range n {
		if len(p) < 2 || len(p) < 2+int(p[1]) {
			return Intro{}, fmt.Errorf("%w: introduce extension overruns the plaintext", ErrMalformed)
		}
		p = p[2+int(p[1]):]
	}
	return in, nil
}

// ClientHandshake is a client's handshake waiting for the service's reply.
type ClientHandshake struct {
	hs   *noise.HandshakeState
	done bool
}

// ClientIntroduce starts the handshake with the service t and returns the
// INTRODUCE1 encrypted part (IntroduceLen bytes): version (1) ‖ Noise
// message 1. It reads the ML-KEM encapsulation seed (32 bytes) and then the
// ephemeral X25519 key (32) from rand; nil means crypto/rand.
func ClientIntroduce(rand io.Reader, t Target, in Intro) (*ClientHandshake, []byte, error) {
	if rand == nil {
		rand = cryptoRand
	}
	if t.KEM == nil {
		return nil, nil, errors.New("hs: target has no KEM key")
	}
	pro, err := prologue(t.Network, t.Identity, t.Blinded, t.AuthKey)
	if err != nil {
		return nil, nil, err
	}
	ct, ss, err := t.KEM.Encapsulate(rand)
	if err != nil {
		return nil, nil, fmt.Errorf("hs: encapsulate: %w", err)
	}
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:           noiseconf.Suite,
		Random:                rand,
		Pattern:               noise.HandshakeNK,
		Initiator:             true,
		Prologue:              pro,
		PeerStatic:            t.Enc[:],
		PresharedKey:          ss[:],
		PresharedKeyPlacement: 2,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("hs: %w", err)
	}
	payload := make([]byte, 0, keys.KEMCiphertextSize+IntroPlaintextLen)
	payload = append(payload, ct[:]...)
	payload = appendIntro(payload, in)
	out := make([]byte, 1, IntroduceLen)
	out[0] = IntroduceVersion
	out, _, _, err = hs.WriteMessage(out, payload)
	if err != nil {
		// The only DH here is es: t.Enc is a low-order point.
		return nil, nil, fmt.Errorf("%w: service enc key: %v", ErrHandshake, err)
	}
	return &ClientHandshake{hs: hs}, out, nil
}

// Finish processes the service's reply (the JOIN payload, ReplyLen bytes)
// and returns the client's end-to-end layer. A handshake finishes once:
// a second call fails.
func (h *ClientHandshake) Finish(reply []byte) (*Layer, error) {
	if h.done {
		return nil, errors.New("hs: handshake already finished")
	}
	if len(reply) != ReplyLen {
		return nil, fmt.Errorf("%w: reply is %d bytes, want %d", ErrMalformed, len(reply), ReplyLen)
	}
	h.done = true
	_, cs1, cs2, err := h.hs.ReadMessage(nil, reply)
	if err != nil || cs1 == nil {
		return nil, ErrHandshake
	}
	return &Layer{send: cs1, recv: cs2}, nil
}

// ServiceSecrets are a service instance's handshake keys: the X25519 key
// (an OnionPrivateKey, which is the package's plain X25519 type) and the
// ML-KEM-768 key whose public halves the descriptor carries.
type ServiceSecrets struct {
	Enc *keys.OnionPrivateKey
	KEM *keys.KEMPrivateKey
}

// NewServiceSecrets generates fresh secrets, reading the X25519 key (32
// bytes) and then the ML-KEM seed (64) from rand; nil means crypto/rand.
func NewServiceSecrets(rand io.Reader) (ServiceSecrets, error) {
	enc, err := keys.GenerateOnion(rand)
	if err != nil {
		return ServiceSecrets{}, fmt.Errorf("hs: %w", err)
	}
	kem, err := keys.GenerateKEM(rand)
	if err != nil {
		return ServiceSecrets{}, fmt.Errorf("hs: %w", err)
	}
	return ServiceSecrets{Enc: enc, KEM: kem}, nil
}

// EncPublic returns the X25519 public key for the descriptor.
func (s ServiceSecrets) EncPublic() [32]byte { return s.Enc.Public() }

// Erase zeroes the secrets; they must not be used afterwards.
func (s ServiceSecrets) Erase() { keys.OnionPair{Onion: s.Enc, KEM: s.KEM}.Erase() }

// ServiceAccept processes an INTRODUCE2 encrypted part addressed to the
// service id (blinded key blinded, introduction point auth key authKey) and
// returns the client's Intro, the client's ephemeral key e as the value to
// put in a replay cache, the reply for JOIN (ReplyLen bytes) and the
// service's end-to-end layer. It reads the ephemeral X25519 key (32 bytes)
// from rand; nil means crypto/rand. It does not check the proof of work or
// replays: the caller does, before spending a circuit on the JOIN.
func ServiceAccept(rand io.Reader, network string, id keys.ServicePublicKey, blinded hsblind.BlindedPublicKey, authKey [32]byte, s ServiceSecrets, encrypted []byte) (in Intro, replay [32]byte, reply []byte, l *Layer, err error) {
	if len(encrypted) != IntroduceLen {
		return Intro{}, replay, nil, nil, fmt.Errorf("%w: introduce is %d bytes, want %d", ErrMalformed, len(encrypted), IntroduceLen)
	}
	if encrypted[0] != IntroduceVersion {
		return Intro{}, replay, nil, nil, fmt.Errorf("%w: introduce version %d, want %d", ErrMalformed, encrypted[0], IntroduceVersion)
	}
	if s.Enc == nil || s.KEM == nil {
		return Intro{}, replay, nil, nil, errors.New("hs: service secrets missing")
	}
	if rand == nil {
		rand = cryptoRand
	}
	pro, err := prologue(network, id, blinded, authKey)
	if err != nil {
		return Intro{}, replay, nil, nil, err
	}
	priv := s.Enc.Bytes()
	pub := s.Enc.Public()
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:           noiseconf.Suite,
		Random:                rand,
		Pattern:               noise.HandshakeNK,
		Prologue:              pro,
		StaticKeypair:         noise.DHKey{Private: priv[:], Public: pub[:]},
		PresharedKeyPlacement: 2,
	})
	if err != nil {
		return Intro{}, replay, nil, nil, fmt.Errorf("hs: %w", err)
	}
	msg := encrypted[1:]
	payload, _, _, err := hs.ReadMessage(make([]byte, 0, keys.KEMCiphertextSize+IntroPlaintextLen), msg)
	if err != nil {
		return Intro{}, replay, nil, nil, ErrHandshake
	}
	in, err = parseIntro(payload[keys.KEMCiphertextSize:])
	if err != nil {
		return Intro{}, replay, nil, nil, err
	}
	ss, err := s.KEM.Decapsulate(payload[:keys.KEMCiphertextSize])
	if err != nil {
		return Intro{}, replay, nil, nil, ErrHandshake
	}
	if err := hs.SetPresharedKey(ss[:]); err != nil {
		return Intro{}, replay, nil, nil, fmt.Errorf("hs: %w", err)
	}
	reply, cs1, cs2, err := hs.WriteMessage(make([]byte, 0, ReplyLen), nil)
	if err != nil || cs1 == nil {
		return Intro{}, replay, nil, nil, fmt.Errorf("hs: %w", err)
	}
	copy(replay[:], msg[:32])
	return in, replay, reply, &Layer{send: cs2, recv: cs1}, nil
}

var cryptoRand io.Reader = rand.Reader
