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

// DHT record of a site (spec/sites.md §3).
const (
	// TypeSite is the DHT record type of a site pointer.
	TypeSite uint16 = 7
	// KeyContext starts the hash input of a site's record key.
	KeyContext = "darkmatter site\x00"
	// PointerVersion is the only pointer version.
	PointerVersion = 1
	// PointerSize is the size of an encoded pointer: version (1) ‖ seq (8)
	// ‖ manifest hash (32) ‖ manifest size (4).
	PointerSize = 1 + 8 + 32 + 4
	// RecordTTL is the longest lifetime of a site record. Hosts may store
	// the owner's signed record again until it expires; the owner
	// republishes before then.
	RecordTTL = 7 * 24 * time.Hour
)

// Pointer is the value of a site's DHT record: it names the newest signed
// manifest, which is stored as a blob (spec/compute.md §2).
type Pointer struct {
	Seq  uint64   // the manifest's Seq, and the record's
	Hash [32]byte // SHA-256 of the encoded signed manifest: its blob hash
	Size uint32   // bytes of the encoded manifest, MinManifestSize..MaxManifestSize
}

// PointerFor returns the pointer to the encoded signed manifest enc of m.
func PointerFor(m *Manifest, enc []byte) Pointer {
	return Pointer{Seq: m.Seq, Hash: sha256.Sum256(enc), Size: uint32(len(enc))}
}

// RecordKey is the DHT key of the records of site key site:
// SHA-256(KeyContext ‖ site).
func RecordKey(site keys.IdentityPublicKey) dht.Key {
	return dht.Key(sha256.Sum256(append([]byte(KeyContext), site[:]...)))
}

// Marshal returns the encoded pointer.
func (p Pointer) Marshal() []byte {
	b := make([]byte, 0, PointerSize)
	b = append(b, PointerVersion)
	b = binary.BigEndian.AppendUint64(b, p.Seq)
	b = append(b, p.Hash[:]...)
	return binary.BigEndian.AppendUint32(b, p.Size)
}

// ParsePointer decodes a pointer: exactly PointerSize bytes, the version,
// and a manifest size within MinManifestSize..MaxManifestSize.
func ParsePointer(b []byte) (Pointer, error) {
	if len(b) != PointerSize {
		return Pointer{}, fmt.Errorf("%w: pointer of %d bytes, want %d", ErrMalformed, len(b), PointerSize)
	}
	if b[0] != PointerVersion {
		return Pointer{}, fmt.Errorf("%w: pointer version %d, want %d", ErrMalformed, b[0], PointerVersion)
	}
	p := Pointer{Seq: binary.BigEndian.Uint64(b[1:9]), Size: binary.BigEndian.Uint32(b[41:45])}
	copy(p.Hash[:], b[9:41])
	if p.Size < MinManifestSize || p.Size > MaxManifestSize {
		return Pointer{}, fmt.Errorf("%w: manifest size %d out of %d..%d", ErrMalformed, p.Size, MinManifestSize, MaxManifestSize)
	}
	return p, nil
}

// CheckManifest checks that enc, fetched by p.Hash, is the manifest p
// names for site on network: its size and hash, a valid layout, the site
// key's signature, the site key and the seq. It returns the manifest.
func (p Pointer) CheckManifest(network string, site keys.IdentityPublicKey, enc []byte) (*Manifest, error) {
	if uint64(len(enc)) != uint64(p.Size) {
		return nil, fmt.Errorf("sites: manifest of %d bytes, pointer says %d", len(enc), p.Size)
	}
	if sha256.Sum256(enc) != p.Hash {
		return nil, errors.New("sites: manifest does not match the pointer's hash")
	}
	m, err := Parse(enc)
	if err != nil {
		return nil, err
	}
	if m.Site != site {
		return nil, errors.New("sites: manifest of another site key")
	}
	if m.Seq != p.Seq {
		return nil, fmt.Errorf("sites: manifest seq %d, pointer says %d", m.Seq, p.Seq)
	}
	if err := m.Verify(network); err != nil {
		return nil, err
	}
	return m, nil
}

// Spec is the rule of TypeSite: the value is a pointer, the key is
// RecordKey of the owner (the site key, which signs the record), and the
// record's seq is the pointer's, so the DHT's newer-seq-replaces rule is
// the manifests' rule.
func Spec() dht.TypeSpec {
	return dht.TypeSpec{
		Name:     "site",
		MaxValue: PointerSize,
		MaxTTL:   RecordTTL,
		Validate: func(r *dht.Record) error {
			p, err := ParsePointer(r.Value)
			if err != nil {
				return err
			}
			if RecordKey(r.Owner) != r.Key {
				return errors.New("key is not SHA-256(site context || owner)")
			}
			if p.Seq != r.Seq {
				return fmt.Errorf("record seq %d differs from the pointer's %d", r.Seq, p.Seq)
			}
			return nil
		},
	}
}

// Register adds TypeSite to g.
func Register(g *dht.Registry) error {
	if err := g.Register(TypeSite, Spec()); err != nil {
		return fmt.Errorf("sites: %w", err)
	}
	return nil
}

// Address returns the .dark address form of a site key: the encoding of
// spec/keys.md "Service addresses" (keys.ServicePublicKey.Address).
func Address(site keys.IdentityPublicKey) string {
	return keys.ServicePublicKey(site).Address()
}

// ParseAddress parses a site's .dark address (keys.ParseAddress) and
// returns its site key.
func ParseAddress(s string) (keys.IdentityPublicKey, error) {
	k, err := keys.ParseAddress(s)
	if err != nil {
		return keys.IdentityPublicKey{}, err
	}
	return keys.IdentityPublicKey(k), nil
}

// Record returns the unsigned DHT record of pointer p for site, expiring
// at expires; the caller signs it with the site key (dht.Record.Sign).
func Record(site keys.IdentityPublicKey, p Pointer, expires time.Time) *dht.Record {
	return &dht.Record{Type: TypeSite, Key: RecordKey(site), Owner: site, Seq: p.Seq, Expires: expires.Unix(), Value: p.Marshal()}
}
