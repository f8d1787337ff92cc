package keys

import (
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// OnionPair is one generation of a relay's circuit handshake keys: its
// X25519 onion key and its ML-KEM-768 key, published together in its
// descriptor and rotated together (spec/keys.md §4).
type OnionPair struct {
	Onion *OnionPrivateKey
	KEM   *KEMPrivateKey
	// Created is when the pair became the relay's current pair.
	Created time.Time
}

// GenerateOnionPair generates a pair, reading the onion key's 32 bytes and
// then the KEM seed's 64 from rand (nil means crypto/rand).
func GenerateOnionPair(rand io.Reader, created time.Time) (OnionPair, error) {
	o, err := GenerateOnion(rand)
	if err != nil {
		return OnionPair{}, err
	}
	k, err := GenerateKEM(rand)
	if err != nil {
		return OnionPair{}, err
	}
	return OnionPair{Onion: o, KEM: k, Created: created}, nil
}

// Erase zeroes the pair's private keys (OnionPrivateKey.Erase,
// KEMPrivateKey.Erase). The pair must not be used afterwards.
func (p OnionPair) Erase() {
	if p.Onion != nil {
		p.Onion.Erase()
	}
	if p.KEM != nil {
		p.KEM.Erase()
	}
}

// Erase zeroes the 32-byte private key k holds and drops its crypto/ecdh
// form. Go's crypto/ecdh keeps its own copy, which cannot be zeroed: it is
// unreachable from k afterwards and its memory is reused once collected. k
// must not be used afterwards.
func (k *OnionPrivateKey) Erase() {
	clear(k.b[:])
	k.k = nil
}

// Erased reports whether Erase was called.
func (k *OnionPrivateKey) Erased() bool { return k.k == nil }

// Erase zeroes the seed and the expanded decapsulation key k holds. k must
// not be used afterwards.
func (k *KEMPrivateKey) Erase() {
	clear(k.seed[:])
	if k.sk != nil {
		*k.sk = zeroKEM
		k.sk = nil
	}
}

// Erased reports whether Erase was called.
func (k *KEMPrivateKey) Erased() bool { return k.sk == nil }

// OnionKeyring holds a relay's current onion pair and at most one
// previous pair, the one it replaced, which still answers CREATE during
// the overlap (spec/keys.md §4). The relay decides when to Rotate and
// Retire; the circuit switch reads the pairs through UseOnionKeys. Its
// methods are safe for concurrent use.
type OnionKeyring struct {
	mu    sync.RWMutex
	pairs [2]OnionPair // current, then previous (Onion nil: none)
}

// NewOnionKeyring returns a keyring with current as its current pair and no
// previous pair.
func NewOnionKeyring(current OnionPair) *OnionKeyring {
	return &OnionKeyring{pairs: [2]OnionPair{current}}
}

// UseOnionKeys calls f with the pairs that answer CREATE now, the current
// one first. The keys stay valid (not erased) until f returns; f must not
// keep them, nor the slice.
func (r *OnionKeyring) UseOnionKeys(f func([]OnionPair)) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n := 1
	if r.pairs[1].Onion != nil {
		n = 2
	}
	f(r.pairs[:n])
}

// Current returns the current pair.
func (r *OnionKeyring) Current() OnionPair {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.pairs[0]
}

// Previous returns the previous pair, if the keyring holds one.
func (r *OnionKeyring) Previous() (OnionPair, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.pairs[1], r.pairs[1].Onion != nil
}

// SetPrevious makes p the previous pair (a relay restoring its keys),
// erasing the one held.
func (r *OnionKeyring) SetPrevious(p OnionPair) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pairs[1].Erase()
	r.pairs[1] = p
}

// Rotate makes next the current pair and the current pair the previous
// one; a previous pair still held is erased first.
func (r *OnionKeyring) Rotate(next OnionPair) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pairs[1].Erase()
	r.pairs[1], r.pairs[0] = r.pairs[0], next
}

// Retire erases the previous pair, if any: from now on only the current
// pair answers CREATE.
func (r *OnionKeyring) Retire() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pairs[1].Erase()
	r.pairs[1] = OnionPair{}
}

// onionPairRecordSize is one pair in an onion keys file: its creation time
// (Unix seconds, big-endian int64), the onion key's 32 bytes and the KEM
// seed's 64.
const onionPairRecordSize = 8 + 32 + KEMSeedSize

// OnionKeysFileName is the name of a relay's onion keys file in its key
// directory.
const OnionKeysFileName = "onion-keys.key"

// EncodeOnionKeysFile returns the contents of an onion keys file: one
// DARKMATTER ONION KEYS block holding the current pair's record and the
// previous pair's, all zero when there is none (spec/keys.md §2).
func EncodeOnionKeysFile(cur OnionPair, prev *OnionPair) []byte {
	body := make([]byte, 0, 2*onionPairRecordSize)
	body = appendPairRecord(body, cur)
	if prev != nil {
		body = appendPairRecord(body, *prev)
	} else {
		body = append(body, make([]byte, onionPairRecordSize)...)
	}
	b := pem.EncodeToMemory(&pem.Block{Type: OnionKeysType, Bytes: body})
	clear(body)
	return b
}

func appendPairRecord(b []byte, p OnionPair) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(p.Created.Unix()))
	b = append(b, p.Onion.b[:]...)
	return append(b, p.KEM.seed[:]...)
}

// WriteOnionKeysFile writes a relay's current onion pair and its previous
// one (nil: none) to path, as WriteFile writes a key file (mode 0600,
// through a temporary file renamed into place).
func WriteOnionKeysFile(path string, cur OnionPair, prev *OnionPair) error {
	data := EncodeOnionKeysFile(cur, prev)
	defer clear(data)
	return writeKeyFile(path, data)
}

// LoadOnionKeysFile reads an onion keys file with the checks of every key
// file (permissions, size, one PEM block of the right type and length):
// the current pair, and the previous one or nil. An error for a missing
// file matches fs.ErrNotExist.
func LoadOnionKeysFile(path string) (cur OnionPair, prev *OnionPair, err error) {
	body, err := loadKeyFile(path, OnionKeysType)
	if err != nil {
		return OnionPair{}, nil, err
	}
	defer clear(body)
	cur, prev, err = parseOnionKeys(body)
	if err != nil {
		return OnionPair{}, nil, fmt.Errorf("keys: %s: %w", path, err)
	}
	return cur, prev, nil
}

// parseOnionKeys parses an onion keys file's body (2 records).
func parseOnionKeys(body []byte) (cur OnionPair, prev *OnionPair, err error) {
	if len(body) != 2*onionPairRecordSize {
		return OnionPair{}, nil, fmt.Errorf("onion keys are %d bytes, want %d", len(body), 2*onionPairRecordSize)
	}
	rec := func(r []byte) OnionPair {
		return OnionPair{
			Created: time.Unix(int64(binary.BigEndian.Uint64(r)), 0),
			Onion:   OnionFromBytes([32]byte(r[8:40])),
			KEM:     KEMFromSeed([KEMSeedSize]byte(r[40:])),
		}
	}
	if isZero(body[:onionPairRecordSize]) {
		return OnionPair{}, nil, errors.New("onion keys file has no current pair")
	}
	cur = rec(body[:onionPairRecordSize])
	if r := body[onionPairRecordSize:]; !isZero(r) {
		p := rec(r)
		if !p.Created.Before(cur.Created) {
			return OnionPair{}, nil, errors.New("onion keys file: previous pair is not older than the current one")
		}
		prev = &p
	}
	return cur, prev, nil
}

func isZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}
