package sites

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/dht"
)

// DHT record of a site host (spec/sites.md §5).
const (
	// TypeHost is the DHT record type of a site host record.
	TypeHost uint16 = 8
	// HostKeyContext starts the hash input of a site's host record key.
	HostKeyContext = "darkmatter site host\x00"
	// HostVersion is the only host record version.
	HostVersion = 1
	// HostRecordSize is the size of a host record value: version (1) ‖
	// site key (32) ‖ seq (8).
	HostRecordSize = 1 + 32 + 8
	// HostTTL is the longest lifetime of a host record.
	HostTTL = 3 * time.Hour
	// HostRepublish is how often a host publishes its record again while
	// it hosts the site.
	HostRepublish = time.Hour
)

// HostRecord says that a hidden service hosts a copy of a site: the value
// of a DHT record of TypeHost, stored under HostKey(Site) and owned (and
// signed) by the host's hidden-service key.
//
//	size  field
//	1     version (1)
//	32    site key
//	8     seq (uint64: the seq of the manifest the host holds)
type HostRecord struct {
	Site keys.IdentityPublicKey // the site hosted
	Host keys.ServicePublicKey  // the host's hidden-service key: the record owner
	Seq  uint64                 // the seq of the manifest the host holds
}

// HostKey is the DHT key of the host records of site key site:
// SHA-256(HostKeyContext ‖ site).
func HostKey(site keys.IdentityPublicKey) dht.Key {
	return dht.Key(sha256.Sum256(append([]byte(HostKeyContext), site[:]...)))
}

// Marshal returns the encoded value of h (Host is the record's owner, not
// part of the value).
func (h HostRecord) Marshal() []byte {
	b := make([]byte, 0, HostRecordSize)
	b = append(b, HostVersion)
	b = append(b, h.Site[:]...)
	return binary.BigEndian.AppendUint64(b, h.Seq)
}

// ParseHostRecord decodes a host record value: exactly HostRecordSize
// bytes and the version. Host is left zero: it is the DHT record's owner
// (HostFromDHT sets it).
func ParseHostRecord(b []byte) (HostRecord, error) {
	if len(b) != HostRecordSize {
		return HostRecord{}, fmt.Errorf("%w: host record of %d bytes, want %d", ErrMalformed, len(b), HostRecordSize)
	}
	if b[0] != HostVersion {
		return HostRecord{}, fmt.Errorf("%w: host record version %d, want %d", ErrMalformed, b[0], HostVersion)
	}
	h := HostRecord{Seq: binary.BigEndian.Uint64(b[33:])}
	copy(h.Site[:], b[1:33])
	return h, nil
}

// checkHostKey checks that an owner is a valid hidden-service address key,
// as apps/names checks an address entry: the key has a .dark address that
// keys.ParseAddress accepts (a prime-order point, spec/keys.md).
func checkHostKey(k keys.ServicePublicKey) error {
	if _, err := keys.ParseAddress(k.Address()); err != nil {
		return fmt.Errorf("sites: host key is not a service address key: %w", err)
	}
	return nil
}

// HostFromDHT returns the host record r carries, with Host set to its
// owner. It checks the type, the value, the key (HostKey of the value's
// site) and that the owner is a valid service address key; it does not
// check the signature or the expiry (dht.Registry.Verify does).
func HostFromDHT(r *dht.Record) (HostRecord, error) {
	if r.Type != TypeHost {
		return HostRecord{}, fmt.Errorf("sites: record of type %d, want %d", r.Type, TypeHost)
	}
	h, err := ParseHostRecord(r.Value)
	if err != nil {
		return HostRecord{}, err
	}
	if HostKey(h.Site) != r.Key {
		return HostRecord{}, errors.New("sites: key is not SHA-256(site host context || site key)")
	}
	h.Host = keys.ServicePublicKey(r.Owner)
	if err := checkHostKey(h.Host); err != nil {
		return HostRecord{}, err
	}
	return h, nil
}

// HostSpec is the rule of TypeHost: the value is a host record, the key is
// HostKey of its site key, and the owner (who signs) is a valid service
// address key. The type is not exclusive: every host of a site stores its
// own record under the site's key, up to the DHT's owners per key.
func HostSpec() dht.TypeSpec {
	return dht.TypeSpec{
		Name:     "site host",
		MaxValue: HostRecordSize,
		MaxTTL:   HostTTL,
		Validate: func(r *dht.Record) error {
			_, err := HostFromDHT(r)
			return err
		},
	}
}

// RegisterHost adds TypeHost to g.
func RegisterHost(g *dht.Registry) error {
	if err := g.Register(TypeHost, HostSpec()); err != nil {
		return fmt.Errorf("sites: %w", err)
	}
	return nil
}

// DHTRecord returns h as a DHT record of TypeHost with record sequence
// number seq, expiring at expires, signed for network by host, the
// hidden-service key it is owned by (its Ed25519 key signs, as
// keys.IdentityFromSeed(host.Seed()) would). seq must grow with each
// record the host publishes for the site (the publish time in unix seconds
// does), or DHT nodes keep the previous one. It refuses an h whose Host is
// set to another key.
func (h HostRecord) DHTRecord(network string, host *keys.ServicePrivateKey, seq uint64, expires time.Time) (*dht.Record, error) {
	pub := host.Public()
	if h.Host != (keys.ServicePublicKey{}) && h.Host != pub {
		return nil, errors.New("sites: host record of another host key")
	}
	r := &dht.Record{Type: TypeHost, Key: HostKey(h.Site), Seq: seq, Expires: expires.Unix(), Value: h.Marshal()}
	err := r.SignWith(network, keys.IdentityPublicKey(pub), func(msg []byte) []byte {
		sig := host.Sign(msg)
		return sig[:]
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}
