package hs

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/darkmatter/darkmatter/crypto/hsblind"
	"github.com/darkmatter/darkmatter/crypto/keys"
)

// Specification constants of the descriptor (spec/hidden-services.md §3).
const (
	// DescriptorType is the DHT record type of descriptors ("hsdesc").
	DescriptorType uint16 = 2
	// DescriptorMaxTTL is the longest a descriptor record may live.
	DescriptorMaxTTL = 3 * time.Hour
	// DescriptorMaxValue is the largest descriptor record value.
	DescriptorMaxValue = 8192
	// MaxIntros is the most introduction points a descriptor lists.
	MaxIntros = 10
	// DescriptorVersion is the first byte of a descriptor value.
	DescriptorVersion = 1
	// MaxClients is the most authorised clients a descriptor can list: 96
	// client entries (a multiple of 16) keep a descriptor with MaxIntros
	// introduction points under DescriptorMaxValue.
	MaxClients = 96

	descKeyPrefix       = "darkmatter dht hsdesc\x00"
	subcredentialPrefix = "darkmatter hs subcredential\x00"
	outerInfo           = "darkmatter hsdesc outer"
	innerInfo           = "darkmatter hsdesc inner"
	clientInfo          = "darkmatter hsdesc client"

	saltLen        = 16
	headerLen      = 1 + 8 + saltLen // version ‖ period number ‖ salt
	tagLen         = chacha20poly1305.Overhead
	descCookieLen  = 32
	clientIDLen    = 8
	clientEntryLen = clientIDLen + descCookieLen + tagLen // 56
	clientPad      = 16                                   // entries come in multiples of this
	authNone       = 0
	authClients    = 1
	introEntryLen  = keys.NodeIDSize + 32
	// innerFixedLen is the inner plaintext before the intro entries: enc
	// (32) ‖ KEM (1184) ‖ effort (4) ‖ seed (32) ‖ count (1).
	innerFixedLen = 32 + keys.KEMPublicKeySize + 4 + 32 + 1
	// minValueLen is the shortest descriptor value: no client
	// authorisation (the intro list is always padded to MaxIntros).
	minValueLen = headerLen + tagLen + 1 + innerFixedLen + MaxIntros*introEntryLen + tagLen
)

// IntroPoint is one introduction point in a descriptor: the relay and the
// auth key the service established there.
type IntroPoint struct {
	Relay   keys.NodeID
	AuthKey [32]byte
}

// Descriptor is the content of a service's descriptor: what a client needs
// to introduce itself.
type Descriptor struct {
	// Enc and KEM are the service instance's handshake keys (ServiceSecrets).
	Enc [32]byte
	KEM *keys.KEMPublicKey
	// PoWEffort is the suggested proof-of-work effort (0: none) and PoWSeed
	// the seed proofs are computed over.
	PoWEffort uint32
	PoWSeed   [32]byte
	// Intros are 1..MaxIntros introduction points.
	Intros []IntroPoint
}

// DescriptorKey is the DHT key of the descriptor stored under blinded key b:
// SHA-256("darkmatter dht hsdesc\x00" ‖ b).
func DescriptorKey(b hsblind.BlindedPublicKey) [32]byte {
	h := sha256.New()
	h.Write([]byte(descKeyPrefix))
	h.Write(b[:])
	return [32]byte(h.Sum(nil))
}

// Subcredential is SHA-256("darkmatter hs subcredential\x00" ‖
// len(network) (1) ‖ network ‖ identity (32) ‖ blinded (32)): the secret,
// known to anyone with the address, that keys a period's descriptor.
func Subcredential(network string, id keys.ServicePublicKey, b hsblind.BlindedPublicKey) ([32]byte, error) {
	if len(network) > maxNetworkLen {
		return [32]byte{}, fmt.Errorf("hs: network name is %d bytes, at most %d", len(network), maxNetworkLen)
	}
	h := sha256.New()
	h.Write([]byte(subcredentialPrefix))
	h.Write([]byte{byte(len(network))})
	h.Write([]byte(network))
	h.Write(id[:])
	h.Write(b[:])
	return [32]byte(h.Sum(nil)), nil
}

// CheckDescriptorValue checks the public layout of a DHT record value: the
// version and the length bounds. Only a client that knows the address can
// check more.
func CheckDescriptorValue(v []byte) error {
	if len(v) < minValueLen || len(v) > DescriptorMaxValue {
		return fmt.Errorf("%w: value is %d bytes, want %d..%d", ErrBadDescriptor, len(v), minValueLen, DescriptorMaxValue)
	}
	if v[0] != DescriptorVersion {
		return fmt.Errorf("%w: version %d, want %d", ErrBadDescriptor, v[0], DescriptorVersion)
	}
	return nil
}

// aeadFor derives an XChaCha20-Poly1305 key and nonce:
// HKDF-SHA256(ikm, salt, info) → key (32) ‖ nonce (24).
func aeadFor(ikm, salt []byte, info string) (cipherAEAD, error) {
	kn, err := hkdf.Key(sha256.New, ikm, salt, info, chacha20poly1305.KeySize+chacha20poly1305.NonceSizeX)
	if err != nil {
		return cipherAEAD{}, err
	}
	a, err := chacha20poly1305.NewX(kn[:chacha20poly1305.KeySize])
	if err != nil {
		return cipherAEAD{}, err
	}
	return cipherAEAD{a: a, nonce: kn[chacha20poly1305.KeySize:]}, nil
}

type cipherAEAD struct {
	a interface {
		Seal(dst, nonce, plaintext, ad []byte) []byte
		Open(dst, nonce, ciphertext, ad []byte) ([]byte, error)
	}
	nonce []byte
}

// SealDescriptor encrypts d for service id, network and period p. With
// clients (at most MaxClients), only those clients can read it. It reads
// from rand (nil means crypto/rand), in order: the salt (16 bytes) and,
// with clients, the descriptor cookie (32), the ephemeral X25519 key (32)
// and each padding entry (56).
func SealDescriptor(rand io.Reader, d *Descriptor, network string, id keys.ServicePublicKey, p hsblind.Period, clients []keys.ClientAuthPublicKey) ([]byte, error) {
	if d == nil || d.KEM == nil {
		return nil, errors.New("hs: descriptor has no KEM key")
	}
	if len(d.Intros) < 1 || len(d.Intros) > MaxIntros {
		return nil, fmt.Errorf("hs: descriptor has %d introduction points, want 1..%d", len(d.Intros), MaxIntros)
	}
	if len(clients) > MaxClients {
		return nil, fmt.Errorf("hs: %d authorised clients, at most %d", len(clients), MaxClients)
	}
	return sealValue(rand, appendInner(nil, d), network, id, p, clients)
}

// sealValue builds a descriptor value around the inner plaintext inner.
func sealValue(rand io.Reader, inner []byte, network string, id keys.ServicePublicKey, p hsblind.Period, clients []keys.ClientAuthPublicKey) ([]byte, error) {
	if rand == nil {
		rand = cryptoRand
	}
	blinded, err := hsblind.BlindPublic(id, network, p)
	if err != nil {
		return nil, fmt.Errorf("hs: %w", err)
	}
	subcred, err := Subcredential(network, id, blinded)
	if err != nil {
		return nil, err
	}
	v := make([]byte, headerLen, DescriptorMaxValue)
	v[0] = DescriptorVersion
	binary.BigEndian.PutUint64(v[1:], p.Number)
	salt := v[9:headerLen]
	if _, err := io.ReadFull(rand, salt); err != nil {
		return nil, fmt.Errorf("hs: reading salt: %w", err)
	}
	ad := descAD(v[:9], blinded)

	outer := []byte{authNone}
	ikm := subcred[:]
	if len(clients) > 0 {
		var cookie [descCookieLen]byte
		if _, err := io.ReadFull(rand, cookie[:]); err != nil {
			return nil, fmt.Errorf("hs: reading descriptor cookie: %w", err)
		}
		outer[0] = authClients
		outer, err = appendClientBlock(outer, rand, clients, cookie, subcred, salt)
		if err != nil {
			return nil, err
		}
		ikm = append(subcred[:], cookie[:]...)
	}
	in, err := aeadFor(ikm, salt, innerInfo)
	if err != nil {
		return nil, fmt.Errorf("hs: %w", err)
	}
	outer = in.a.Seal(outer, in.nonce, inner, ad)
	o, err := aeadFor(subcred[:], salt, outerInfo)
	if err != nil {
		return nil, fmt.Errorf("hs: %w", err)
	}
	v = o.a.Seal(v, o.nonce, outer, ad)
	if len(v) > DescriptorMaxValue {
		return nil, fmt.Errorf("hs: descriptor is %d bytes, at most %d", len(v), DescriptorMaxValue)
	}
	return v, nil
}

// descAD is the associated data of both layers: version ‖ period number
// (the value's first 9 bytes) ‖ blinded key.
func descAD(head []byte, b hsblind.BlindedPublicKey) []byte {
	ad := make([]byte, 0, 9+32)
	ad = append(ad, head...)
	return append(ad, b[:]...)
}

// appendInner appends the inner plaintext: enc ‖ KEM ‖ effort ‖ seed ‖
// count ‖ count × (relay ‖ auth key).
func appendInner(b []byte, d *Descriptor) []byte {
	b = append(b, d.Enc[:]...)
	b = append(b, d.KEM[:]...)
	b = binary.BigEndian.AppendUint32(b, d.PoWEffort)
	b = append(b, d.PoWSeed[:]...)
	b = append(b, byte(len(d.Intros)))
	for _, ip := range d.Intros {
		b = append(b, ip.Relay[:]...)
		b = append(b, ip.AuthKey[:]...)
	}
	// Zero entries up to MaxIntros, so that the size does not tell how
	// many introduction points the service keeps.
	return append(b, make([]byte, (MaxIntros-len(d.Intros))*introEntryLen)...)
}

// parseInner parses the inner plaintext.
func parseInner(p []byte) (*Descriptor, error) {
	if len(p) < innerFixedLen {
		return nil, fmt.Errorf("%w: inner layer is %d bytes", ErrBadDescriptor, len(p))
	}
	d := &Descriptor{KEM: new(keys.KEMPublicKey)}
	copy(d.Enc[:], p)
	p = p[32:]
	copy(d.KEM[:], p)
	p = p[keys.KEMPublicKeySize:]
	d.PoWEffort = binary.BigEndian.Uint32(p)
	copy(d.PoWSeed[:], p[4:])
	n := int(p[36])
	p = p[37:]
	if n < 1 || n > MaxIntros || len(p) != MaxIntros*introEntryLen {
		return nil, fmt.Errorf("%w: %d introduction points in %d bytes", ErrBadDescriptor, n, len(p))
	}
	if !isZero(p[n*introEntryLen:]) {
		return nil, fmt.Errorf("%w: padding after the introduction points is not zero", ErrBadDescriptor)
	}
	d.Intros = make([]IntroPoint, n)
	for i := range d.Intros {
		if isZero(p[:introEntryLen]) {
			return nil, fmt.Errorf("%w: introduction point %d is empty", ErrBadDescriptor, i+1)
		}
		copy(d.Intros[i].Relay[:], p)
		copy(d.Intros[i].AuthKey[:], p[keys.NodeIDSize:])
		p = p[introEntryLen:]
	}
	if err := d.KEM.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadDescriptor, err)
	}
	return d, nil
}

// OpenDescriptor decrypts a descriptor record value for service id, network
// and period p. client is the client's authorisation key, or nil. It
// returns ErrNotAuthorised when the descriptor is for authorised clients
// only and client is nil or not listed, and an error matching
// ErrBadDescriptor for anything else that fails (another period, network or
// service; a modified value).
func OpenDescriptor(value []byte, network string, id keys.ServicePublicKey, p hsblind.Period, client *keys.ClientAuthPrivateKey) (*Descriptor, error) {
	if err := CheckDescriptorValue(value); err != nil {
		return nil, err
	}
	if n := binary.BigEndian.Uint64(value[1:]); n != p.Number {
		return nil, fmt.Errorf("%w: descriptor is for period %d, want %d", ErrBadDescriptor, n, p.Number)
	}
	blinded, err := hsblind.BlindPublic(id, network, p)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadDescriptor, err)
	}
	subcred, err := Subcredential(network, id, blinded)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadDescriptor, err)
	}
	salt := value[9:headerLen]
	ad := descAD(value[:9], blinded)
	o, err := aeadFor(subcred[:], salt, outerInfo)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadDescriptor, err)
	}
	outer, err := o.a.Open(nil, o.nonce, value[headerLen:], ad)
	if err != nil {
		return nil, fmt.Errorf("%w: outer layer does not decrypt (wrong service, network or period, or modified)", ErrBadDescriptor)
	}
	ikm := subcred[:]
	switch outer[0] {
	case authNone:
		outer = outer[1:]
	case authClients:
		cookie, rest, err := openClientBlock(outer[1:], client, subcred, salt)
		if err != nil {
			return nil, err
		}
		ikm = append(subcred[:], cookie[:]...)
		outer = rest
	default:
		return nil, fmt.Errorf("%w: unknown auth type %d", ErrBadDescriptor, outer[0])
	}
	inner, err := aeadFor(ikm, salt, innerInfo)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadDescriptor, err)
	}
	pt, err := inner.a.Open(nil, inner.nonce, outer, ad)
	if err != nil {
		return nil, fmt.Errorf("%w: inner layer does not decrypt", ErrBadDescriptor)
	}
	return parseInner(pt)
}

// isZero reports whether b holds only zero bytes (public data: not
// constant-time).
func isZero(b []byte) bool { return bytes.Count(b, []byte{0}) == len(b) }
