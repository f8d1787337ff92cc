package link

import (
	"fmt"

	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/crypto/noiseconf"
	"github.com/flynn/noise"
)

// This file is the sans-IO Noise_IK_25519_{ChaChaPoly,AESGCM}_BLAKE2s
// handshake: the functions take and return messages and never touch a
// conn; setup.go drives them (STYLE §2.2.7).

// session is the outcome of a handshake: one cipher per direction, the
// suite and the peer's authenticated static key.
type session struct {
	suite      Suite
	send, recv *transportCipher
	peer       keys.LinkPublicKey
	binding    [32]byte // the handshake hash (Noise channel binding)
}

// prologue returns the Noise prologue: "darkmatter link v2\x00" ||
// network || the preamble's PreambleLen bytes. The preamble carries the
// suite and flags, so the handshake fails if anyone changed them.
func prologue(network string, p preamble) []byte {
	b := append([]byte(prologuePrefix), network...)
	return p.append(b)
}

// staticKeypair returns s's static key as a Noise keypair, generating a
// fresh one when s has none.
func staticKeypair(s *settings) (noise.DHKey, error) {
	if s.static == nil {
		return noiseconf.DH25519.GenerateKeypair(s.rand)
	}
	priv, pub := s.static.Bytes(), s.static.Public()
	return noise.DHKey{Private: priv[:], Public: pub[:]}, nil
}

// initiator is the initiator's handshake between the first and second
// message.
type initiator struct {
	hs    *noise.HandshakeState
	suite Suite
}

// startInitiator builds the first handshake message (Msg1Len bytes) to a
// responder whose static key is peer, for the preamble p it sends first.
func startInitiator(s *settings, p preamble, peer keys.LinkPublicKey) (*initiator, []byte, error) {
	static, err := staticKeypair(s)
	if err != nil {
		return nil, nil, fmt.Errorf("link: static key: %w", err)
	}
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:   p.suite.noiseSuite(),
		Random:        s.rand,
		Pattern:       noise.HandshakeIK,
		Initiator:     true,
		Prologue:      prologue(s.network, p),
		StaticKeypair: static,
		PeerStatic:    peer[:],
	})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	msg1, _, _, err := hs.WriteMessage(make([]byte, 0, Msg1Len), nil)
	if err != nil {
		// Only a bad peer key (a low-order point) or a failing Rand get here.
		return nil, nil, fmt.Errorf("%w: first message: %w", ErrHandshake, err)
	}
	return &initiator{hs: hs, suite: p.suite}, msg1, nil
}

// finish reads the responder's message and completes the handshake.
func (i *initiator) finish(msg2 []byte, peer keys.LinkPublicKey) (*session, error) {
	if len(msg2) != Msg2Len {
		return nil, fmt.Errorf("%w: second message is %d bytes, want %d", ErrHandshake, len(msg2), Msg2Len)
	}
	payload, cs1, cs2, err := i.hs.ReadMessage(nil, msg2)
	if err != nil {
		return nil, fmt.Errorf("%w: second message did not decrypt", ErrHandshake)
	}
	if len(payload) != 0 || cs1 == nil {
		return nil, fmt.Errorf("%w: malformed second message", ErrHandshake)
	}
	sess, err := newSession(i.suite, cs1, cs2, peer)
	if err != nil {
		return nil, err
	}
	copy(sess.binding[:], i.hs.ChannelBinding())
	return sess, nil
}

// respond reads the initiator's first message, sent after the preamble p
// (already checked), and returns the session and the second message
// (Msg2Len bytes). On error the caller sends a reject frame with
// RejectHandshake.
func respond(s *settings, p preamble, msg1 []byte) (*session, []byte, error) {
	if len(msg1) != Msg1Len {
		return nil, nil, fmt.Errorf("%w: first message is %d bytes, want %d", ErrHandshake, len(msg1), Msg1Len)
	}
	if s.static == nil {
		return nil, nil, fmt.Errorf("link: Accept needs Config.Static")
	}
	static, err := staticKeypair(s)
	if err != nil {
		return nil, nil, err
	}
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:   p.suite.noiseSuite(),
		Random:        s.rand,
		Pattern:       noise.HandshakeIK,
		Initiator:     false,
		Prologue:      prologue(s.network, p),
		StaticKeypair: static,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	payload, _, _, err := hs.ReadMessage(nil, msg1)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: first message did not decrypt (the peer expected another key for us?)", ErrHandshake)
	}
	if len(payload) != 0 {
		return nil, nil, fmt.Errorf("%w: malformed first message", ErrHandshake)
	}
	peer := keys.LinkPublicKey(hs.PeerStatic())
	msg2, cs1, cs2, err := hs.WriteMessage(make([]byte, 0, Msg2Len), nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: second message: %w", ErrHandshake, err)
	}
	// cs1 encrypts initiator to responder, cs2 the other way.
	sess, err := newSession(p.suite, cs2, cs1, peer)
	if err != nil {
		return nil, nil, err
	}
	copy(sess.binding[:], hs.ChannelBinding())
	return sess, msg2, nil
}

func newSession(suite Suite, send, recv *noise.CipherState, peer keys.LinkPublicKey) (*session, error) {
	sc, err := newTransportCipher(suite, send.UnsafeKey(), send.Nonce())
	if err != nil {
		return nil, err
	}
	rc, err := newTransportCipher(suite, recv.UnsafeKey(), recv.Nonce())
	if err != nil {
		return nil, err
	}
	return &session{suite: suite, send: sc, recv: rc, peer: peer}, nil
}
