package hs

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"io"
	"slices"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// clientKeys derives a client's entry id and wrap key from the X25519
// shared secret: HKDF-SHA256(shared ‖ subcredential, salt,
// "darkmatter hsdesc client") → id (8) ‖ wrap key (32).
func clientKeys(shared []byte, subcred [32]byte, salt []byte) (id []byte, wrap []byte, err error) {
	ikm := make([]byte, 0, 64)
	ikm = append(ikm, shared...)
	ikm = append(ikm, subcred[:]...)
	out, err := hkdf.Key(sha256.New, ikm, salt, clientInfo, clientIDLen+chacha20poly1305.KeySize)
	if err != nil {
		return nil, nil, err
	}
	return out[:clientIDLen], out[clientIDLen:], nil
}

// zeroNonce is the nonce of the cookie wrap: every wrap key encrypts one
// message.
var zeroNonce [chacha20poly1305.NonceSize]byte

// appendClientBlock appends the client auth block that wraps cookie for
// each client: ephemeral X25519 public key (32) ‖ entry count (1, a
// multiple of 16) ‖ entries (client id (8) ‖ wrapped cookie (48)), sorted
// by their bytes, real and padding entries alike.
func appendClientBlock(b []byte, rand io.Reader, clients []keys.ClientAuthPublicKey, cookie [descCookieLen]byte, subcred [32]byte, salt []byte) ([]byte, error) {
	var ephBytes [32]byte
	if _, err := io.ReadFull(rand, ephBytes[:]); err != nil {
		return nil, fmt.Errorf("hs: reading ephemeral key: %w", err)
	}
	eph, err := ecdh.X25519().NewPrivateKey(ephBytes[:])
	clear(ephBytes[:])
	if err != nil {
		return nil, fmt.Errorf("hs: %w", err)
	}
	n := (len(clients) + clientPad - 1) / clientPad * clientPad
	entries := make([][]byte, 0, n)
	for i, c := range clients {
		pub, err := c.ECDH()
		if err != nil {
			return nil, fmt.Errorf("hs: client auth key %d: %w", i, err)
		}
		shared, err := eph.ECDH(pub)
		if err != nil {
			return nil, fmt.Errorf("hs: client auth key %d is a low-order point", i)
		}
		id, wrap, err := clientKeys(shared, subcred, salt)
		if err != nil {
			return nil, fmt.Errorf("hs: %w", err)
		}
		a, err := chacha20poly1305.New(wrap)
		if err != nil {
			return nil, fmt.Errorf("hs: %w", err)
		}
		entries = append(entries, a.Seal(id, zeroNonce[:], cookie[:], nil))
	}
	for len(entries) < n {
		e := make([]byte, clientEntryLen)
		if _, err := io.ReadFull(rand, e); err != nil {
			return nil, fmt.Errorf("hs: reading padding entry: %w", err)
		}
		entries = append(entries, e)
	}
	// Sorting hides which entries are real: ids are pseudorandom.
	slices.SortFunc(entries, bytes.Compare)
	b = append(b, eph.PublicKey().Bytes()...)
	b = append(b, byte(n))
	for _, e := range entries {
		b = append(b, e...)
	}
	return b, nil
}

// openClientBlock parses the client auth block at the start of b and
// unwraps the descriptor cookie with client's key. It returns the cookie
// and the rest of b (the inner ciphertext).
func openClientBlock(b []byte, client *keys.ClientAuthPrivateKey, subcred [32]byte, salt []byte) (cookie [descCookieLen]byte, rest []byte, err error) {
	if len(b) < 33 {
		return cookie, nil, fmt.Errorf("%w: client auth block truncated", ErrBadDescriptor)
	}
	ephPub, n := b[:32], int(b[32])
	if n == 0 || n%clientPad != 0 || len(b)-33 < n*clientEntryLen {
		return cookie, nil, fmt.Errorf("%w: %d client entries in %d bytes", ErrBadDescriptor, n, len(b)-33)
	}
	entries, rest := b[33:33+n*clientEntryLen], b[33+n*clientEntryLen:]
	if client == nil {
		return cookie, nil, ErrNotAuthorised
	}
	pub, err := ecdh.X25519().NewPublicKey(ephPub)
	if err != nil {
		return cookie, nil, fmt.Errorf("%w: %v", ErrBadDescriptor, err)
	}
	shared, err := client.ECDH().ECDH(pub)
	if err != nil {
		return cookie, nil, fmt.Errorf("%w: ephemeral key is a low-order point", ErrBadDescriptor)
	}
	id, wrap, err := clientKeys(shared, subcred, salt)
	if err != nil {
		return cookie, nil, fmt.Errorf("%w: %v", ErrBadDescriptor, err)
	}
	a, err := chacha20poly1305.New(wrap)
	if err != nil {
		return cookie, nil, fmt.Errorf("%w: %v", ErrBadDescriptor, err)
	}
	for e := range slices.Chunk(entries, clientEntryLen) {
		if !bytes.Equal(e[:clientIDLen], id) {
			continue
		}
		if _, err := a.Open(cookie[:0], zeroNonce[:], e[clientIDLen:], nil); err == nil {
			return cookie, rest, nil
		}
	}
	return cookie, nil, ErrNotAuthorised
}
