package onionhs

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"

	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/crypto/layer"
	"github.com/darkmatter/darkmatter/crypto/noiseconf"
	"github.com/flynn/noise"
)

// Specification constants.
const (
	// ClientMessageSize is the size of the client's handshake message:
	// e (32) + encrypted KEM ciphertext (1088 + 16).
	ClientMessageSize = 32 + keys.KEMCiphertextSize + 16
	// RelayMessageSize is the size of the relay's reply: e (32) + empty
	// encrypted payload (16).
	RelayMessageSize = 32 + 16
	prologuePrefix   = "darkmatter circuit v1\x00"
)

var (
	// ErrHandshake means a handshake message failed to authenticate: wrong
	// onion or KEM key, wrong network, or a modified message.
	ErrHandshake = errors.New("onionhs: handshake failed")
	errSize      = errors.New("onionhs: bad handshake message size")
)

// RelayKeys are the public keys a client needs to run the handshake with a
// relay; they come from the relay's signed descriptor.
type RelayKeys struct {
	Onion keys.OnionPublicKey
	KEM   *keys.KEMPublicKey
}

func prologue(network string) []byte {
	return append([]byte(prologuePrefix), network...)
}

// ClientState is a client's handshake in progress.
type ClientState struct {
	hs *noise.HandshakeState
}

// ClientStart begins a handshake with a relay and returns the message to send
// in CREATE or EXTEND. rand == nil means crypto/rand.
func ClientStart(rand io.Reader, network string, rk RelayKeys) (*ClientState, []byte, error) {
	if rand == nil {
		rand = cryptoRand
	}
	ct, ss, err := rk.KEM.Encapsulate(rand)
	if err != nil {
		return nil, nil, fmt.Errorf("onionhs: encapsulate: %w", err)
	}
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:           noiseconf.Suite,
		Random:                rand,
		Pattern:               noise.HandshakeNK,
		Initiator:             true,
		Prologue:              prologue(network),
		PeerStatic:            rk.Onion[:],
		PresharedKey:          ss[:],
		PresharedKeyPlacement: 2,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("onionhs: %w", err)
	}
	msg, _, _, err := hs.WriteMessage(make([]byte, 0, ClientMessageSize), ct[:])
	if err != nil {
		return nil, nil, fmt.Errorf("onionhs: %w", err)
	}
	return &ClientState{hs: hs}, msg, nil
}

// Finish processes the relay's reply and returns the hop's layer keys.
func (c *ClientState) Finish(reply []byte) (layer.Keys, error) {
	if len(reply) != RelayMessageSize {
		return layer.Keys{}, errSize
	}
	_, cs1, cs2, err := c.hs.ReadMessage(nil, reply)
	if err != nil || cs1 == nil {
		return layer.Keys{}, ErrHandshake
	}
	return splitKeys(cs1, cs2)
}

// RelayPrivate are the relay's private keys used by the handshake.
type RelayPrivate struct {
	Onion *keys.OnionPrivateKey
	KEM   *keys.KEMPrivateKey
}

// Respond processes a client's handshake message and returns the reply and
// the hop's layer keys. rand == nil means crypto/rand.
func Respond(rand io.Reader, network string, rp RelayPrivate, msg []byte) ([]byte, layer.Keys, error) {
	if len(msg) != ClientMessageSize {
		return nil, layer.Keys{}, errSize
	}
	if rand == nil {
		rand = cryptoRand
	}
	priv := rp.Onion.Bytes()
	pub := rp.Onion.Public()
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:           noiseconf.Suite,
		Random:                rand,
		Pattern:               noise.HandshakeNK,
		Initiator:             false,
		Prologue:              prologue(network),
		StaticKeypair:         noise.DHKey{Private: priv[:], Public: pub[:]},
		PresharedKeyPlacement: 2,
	})
	if err != nil {
		return nil, layer.Keys{}, fmt.Errorf("onionhs: %w", err)
	}
	ct, _, _, err := hs.ReadMessage(nil, msg)
	if err != nil {
		return nil, layer.Keys{}, ErrHandshake
	}
	ss, err := rp.KEM.Decapsulate(ct)
	if err != nil {
		return nil, layer.Keys{}, ErrHandshake
	}
	if err := hs.SetPresharedKey(ss[:]); err != nil {
		return nil, layer.Keys{}, fmt.Errorf("onionhs: %w", err)
	}
	reply, cs1, cs2, err := hs.WriteMessage(make([]byte, 0, RelayMessageSize), nil)
	if err != nil || cs1 == nil {
		return nil, layer.Keys{}, fmt.Errorf("onionhs: %w", err)
	}
	k, err := splitKeys(cs1, cs2)
	return reply, k, err
}

// splitKeys feeds both Noise transport keys into the layer KDF.
func splitKeys(cs1, cs2 *noise.CipherState) (layer.Keys, error) {
	k1, k2 := cs1.UnsafeKey(), cs2.UnsafeKey()
	secret := make([]byte, 0, 64)
	secret = append(secret, k1[:]...)
	secret = append(secret, k2[:]...)
	return layer.DeriveKeys(secret)
}

var cryptoRand = rand.Reader
