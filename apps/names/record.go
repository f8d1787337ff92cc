package names

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// Specification constants of name records (spec/names.md §2).
const (
	// Version is the only record version.
	Version = 1
	// MaxEntries is the most entries of a record.
	MaxEntries = 16
	// MaxTextLen is the longest text entry, in bytes of UTF-8.
	MaxTextLen = 255
	// recordFixed is the size of a record without name and entries.
	recordFixed = 1 + 1 + 8 + 8 + 8 + 1
	// MaxRecordSize is the largest encoded record value.
	MaxRecordSize = recordFixed + MaxNameLen + MaxEntries*(2+MaxTextLen)
	// maxTime is the largest time a record carries (9999-12-31T23:59:59Z),
	// as the DHT envelope's expiry.
	maxTime = 253402300799
)

// EntryType says what an entry maps a name to.
type EntryType uint8

// Entry types.
const (
	EntryAddress EntryType = 1 // a hidden service's key (32 bytes): its .dark address
	EntryText    EntryType = 2 // UTF-8 text, 0..255 bytes
	EntryModule  EntryType = 3 // a module hash (32 bytes, spec/compute.md)
	EntrySite    EntryType = 4 // a site's Ed25519 key (32 bytes)
)

// Entry is one target of a name.
type Entry struct {
	Type EntryType
	Data []byte
}

// AddressEntry returns an entry mapping a name to the service k.
func AddressEntry(k keys.ServicePublicKey) Entry { return Entry{EntryAddress, k[:]} }

// TextEntry returns a text entry.
func TextEntry(s string) Entry { return Entry{EntryText, []byte(s)} }

// ModuleEntry returns a module hash entry.
func ModuleEntry(h [32]byte) Entry { return Entry{EntryModule, h[:]} }

// SiteEntry returns a site key entry.
func SiteEntry(k [32]byte) Entry { return Entry{EntrySite, k[:]} }

// check reports whether e is a valid entry.
func (e Entry) check() error {
	switch e.Type {
	case EntryAddress:
		if len(e.Data) != keys.PublicKeySize {
			return fmt.Errorf("address entry of %d bytes, want %d", len(e.Data), keys.PublicKeySize)
		}
		if _, err := keys.ParseAddress(keys.ServicePublicKey(e.Data).Address()); err != nil {
			return fmt.Errorf("address entry: %w", err)
		}
	case EntryText:
		if len(e.Data) > MaxTextLen || !utf8.Valid(e.Data) {
			return fmt.Errorf("text entry is not 0..%d bytes of UTF-8", MaxTextLen)
		}
	case EntryModule, EntrySite:
		if len(e.Data) != 32 {
			return fmt.Errorf("entry of type %d has %d bytes, want 32", e.Type, len(e.Data))
		}
	default:
		return fmt.Errorf("unknown entry type %d", e.Type)
	}
	return nil
}

// Address returns the .dark address of an address entry.
func (e Entry) Address() (string, bool) {
	if e.Type != EntryAddress || len(e.Data) != keys.PublicKeySize {
		return "", false
	}
	return keys.ServicePublicKey(e.Data).Address(), true
}

// Site returns the site key of a site entry.
func (e Entry) Site() (keys.IdentityPublicKey, bool) {
	if e.Type != EntrySite || len(e.Data) != keys.PublicKeySize {
		return keys.IdentityPublicKey{}, false
	}
	return keys.IdentityPublicKey(e.Data), true
}

// Record is a name record: the value of a DHT record of type Type.
//
//	size  field
//	1     version (1)
//	1     name length n (1..253)
//	n     canonical name
//	8     registered (int64 unix seconds; the first registration, kept on renewal)
//	8     expires (int64 unix seconds, after registered; equals the DHT record's expiry)
//	8     proof-of-work nonce (uint64)
//	1     entry count (0..16)
//	      entries: type (1) ‖ length (1) ‖ data
//
// All integers are big-endian.
type Record struct {
	Name       string
	Registered time.Time
	Expires    time.Time
	Nonce      uint64
	Entries    []Entry
	// Owner is the key that signed the DHT record, set by FromDHT and
	// Resolve; it is not part of the value.
	Owner keys.IdentityPublicKey
}

// ErrMalformed is wrapped by every error of Parse.
var ErrMalformed = errors.New("names: malformed record")

// check reports whether r can be encoded.
func (r *Record) check() error {
	c, err := CanonicalName(r.Name)
	if err != nil {
		return err
	}
	if c != r.Name {
		return fmt.Errorf("%w: not in canonical form", ErrName)
	}
	reg, exp := r.Registered.Unix(), r.Expires.Unix()
	if reg < 1 || exp <= reg || exp > maxTime {
		return errors.New("names: want 1 <= registered < expires <= 253402300799")
	}
	if len(r.Entries) > MaxEntries {
		return fmt.Errorf("names: %d entries, want at most %d", len(r.Entries), MaxEntries)
	}
	for _, e := range r.Entries {
		if err := e.check(); err != nil {
			return fmt.Errorf("names: %w", err)
		}
	}
	return nil
}

// Marshal returns the encoded record, or an error if a field is out of
// its range (the rules Parse checks).
func (r *Record) Marshal() ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, recordFixed+len(r.Name)+len(r.Entries)*34)
	b = append(b, Version, byte(len(r.Name)))
	b = append(b, r.Name...)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Registered.Unix()))
	b = binary.BigEndian.AppendUint64(b, uint64(r.Expires.Unix()))
	b = binary.BigEndian.AppendUint64(b, r.Nonce)
	b = append(b, byte(len(r.Entries)))
	for _, e := range r.Entries {
		b = append(b, byte(e.Type), byte(len(e.Data)))
		b = append(b, e.Data...)
	}
	return b, nil
}

// Parse decodes a record value. It refuses, wrapping ErrMalformed, an
// unknown version, a name that is not canonical, times out of range, an
// invalid or unknown entry, a length past the end and trailing bytes.
func Parse(b []byte) (*Record, error) {
	if len(b) > MaxRecordSize {
		return nil, fmt.Errorf("%w: %d bytes, want at most %d", ErrMalformed, len(b), MaxRecordSize)
	}
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: truncated", ErrMalformed)
	}
	if b[0] != Version {
		return nil, fmt.Errorf("%w: version %d", ErrMalformed, b[0])
	}
	n := int(b[1])
	b = b[2:]
	if len(b) < n+25 {
		return nil, fmt.Errorf("%w: truncated", ErrMalformed)
	}
	r := &Record{Name: string(b[:n])}
	b = b[n:]
	reg, exp := int64(binary.BigEndian.Uint64(b)), int64(binary.BigEndian.Uint64(b[8:]))
	if reg < 1 || exp <= reg || exp > maxTime {
		return nil, fmt.Errorf("%w: want 1 <= registered < expires <= %d", ErrMalformed, maxTime)
	}
	r.Registered, r.Expires = time.Unix(reg, 0), time.Unix(exp, 0)
	r.Nonce = binary.BigEndian.Uint64(b[16:])
	count := int(b[24])
	b = b[25:]
	if count > MaxEntries {
		return nil, fmt.Errorf("%w: %d entries, want at most %d", ErrMalformed, count, MaxEntries)
	}
	r.Entries = make([]Entry, 0, count)
	for range count {
		if len(b) < 2 || len(b) < 2+int(b[1]) {
			return nil, fmt.Errorf("%w: truncated entry", ErrMalformed)
		}
		n := int(b[1])
		e := Entry{Type: EntryType(b[0]), Data: make([]byte, n)}
		copy(e.Data, b[2:2+n])
		b = b[2+n:]
		r.Entries = append(r.Entries, e)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(b))
	}
	if err := r.check(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return r, nil
}
