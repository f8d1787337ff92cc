package sites

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/darkmatter/darkmatter/apps/compute/manifest"
	"github.com/darkmatter/darkmatter/crypto/keys"
)

// Site manifest layout limits (spec/sites.md §2).
const (
	// Version is the only site manifest version.
	Version = 1
	// SignatureContext starts what a site manifest signature covers.
	SignatureContext = "darkmatter site manifest v1\x00"

	MaxFiles          = 4096
	MaxHandlers       = 64
	MaxPathLen        = 1024
	MaxContentTypeLen = 127
	MaxNetworkLen     = keys.MaxNetworkLen
	// MaxFileSize is the largest file: the largest blob.
	MaxFileSize = manifest.MaxBlobSize
	// MaxSiteSize is the largest sum of the file sizes, 1 GiB.
	MaxSiteSize = 1 << 30
	// MaxCreated is 9999-12-31T23:59:59Z, as for DHT expiries.
	MaxCreated = manifest.MaxCreated

	// maxRequestPath bounds the request paths CleanPath reads.
	maxRequestPath = 8 * MaxPathLen

	headerSize = 1 + 32 + 8 + 8 + 2 // version .. file count
	entryFixed = 2 + 32 + 8 + 1     // path length, hash, size, type length
	handlerFix = 2 + 32 + 1         // prefix length, module hash, function length
	// MinManifestSize is the smallest encoded manifest (153 bytes): no
	// file and one handler "/" with a 1-byte function name.
	MinManifestSize = headerSize + 1 + handlerFix + 1 + 1 + keys.SignatureSize
	// MaxManifestSize is the largest encoded manifest (4962612 bytes); it
	// fits in one blob.
	MaxManifestSize = headerSize + MaxFiles*(entryFixed+MaxPathLen+MaxContentTypeLen) + 1 +
		MaxHandlers*(handlerFix+MaxPathLen+manifest.MaxFunctionLen) + keys.SignatureSize
)

// Entry is one static file of a site.
type Entry struct {
	Path        string   // canonical path (CheckPath)
	Hash        [32]byte // SHA-256 of the content: its blob hash
	Size        uint64   // content bytes, 0..MaxFileSize
	ContentType string   // HTTP Content-Type, printable ASCII
}

// Handler names a WebAssembly function that generates the pages under a
// path prefix (a delegated call, spec/compute.md).
type Handler struct {
	Prefix   string   // "/", a canonical path, or a canonical path + "/"
	Module   [32]byte // module hash
	Function string   // manifest.CheckFunctionName
}

// Manifest is a site's signed manifest.
type Manifest struct {
	Site      keys.IdentityPublicKey // the site key, which signs
	Seq       uint64                 // a higher Seq replaces a lower one
	Created   int64                  // unix seconds
	Files     []Entry                // sorted by Path, bytewise, no repeats
	Handlers  []Handler              // sorted by Prefix, bytewise, no repeats
	Signature [keys.SignatureSize]byte
}

// ErrMalformed is wrapped by every layout error of Parse and ParsePointer.
var ErrMalformed = errors.New("sites: malformed")

// Sign sets m.Site to k's public key, signs m for network and returns the
// encoded manifest. It refuses any field out of its bounds.
func (m *Manifest) Sign(network string, k *keys.IdentityPrivateKey) ([]byte, error) {
	if err := checkNetwork(network); err != nil {
		return nil, err
	}
	m.Site = k.Public()
	body, err := m.appendBody(nil)
	if err != nil {
		return nil, err
	}
	m.Signature = k.Sign(signedBytes(network, body))
	return append(body, m.Signature[:]...), nil
}

// Marshal returns the encoded manifest with its current signature.
func (m *Manifest) Marshal() ([]byte, error) {
	body, err := m.appendBody(nil)
	if err != nil {
		return nil, err
	}
	return append(body, m.Signature[:]...), nil
}

// Verify checks that m is within its bounds and carries its site key's
// signature for network. A manifest of another network never verifies.
func (m *Manifest) Verify(network string) error {
	if err := checkNetwork(network); err != nil {
		return err
	}
	body, err := m.appendBody(nil)
	if err != nil {
		return err
	}
	if !m.Site.Verify(signedBytes(network, body), m.Signature[:]) {
		return errors.New("sites: bad manifest signature (tampered, another network, or not the site key's)")
	}
	return nil
}

// Replaces reports whether m may replace old: the same site and a strictly
// higher Seq. Both must have been verified.
func (m *Manifest) Replaces(old *Manifest) error {
	if m.Site != old.Site {
		return errors.New("sites: manifests of different sites")
	}
	if m.Seq <= old.Seq {
		return fmt.Errorf("sites: manifest seq %d does not exceed the current %d", m.Seq, old.Seq)
	}
	return nil
}

// TotalSize is the sum of the file sizes.
func (m *Manifest) TotalSize() uint64 {
	var n uint64
	for _, e := range m.Files {
		n += e.Size
	}
	return n
}

// CheckFile checks that content is the file e names: its size and SHA-256.
// A host that serves a tampered file is caught here.
func CheckFile(e Entry, content []byte) error {
	if uint64(len(content)) != e.Size {
		return fmt.Errorf("sites: %d bytes for a file of %d", len(content), e.Size)
	}
	if sha256.Sum256(content) != e.Hash {
		return errors.New("sites: file content does not match the manifest's hash")
	}
	return nil
}

func checkNetwork(network string) error {
	if err := keys.CheckNetwork(network); err != nil {
		return fmt.Errorf("sites: %w", err)
	}
	return nil
}

func signedBytes(network string, body []byte) []byte {
	return keys.AppendSigned(make([]byte, 0, len(SignatureContext)+1+len(network)+len(body)), SignatureContext, network, body)
}

// check reports the first field out of its bounds.
func (m *Manifest) check() error {
	if len(m.Files) > MaxFiles {
		return fmt.Errorf("%d files, want at most %d", len(m.Files), MaxFiles)
	}
	if len(m.Handlers) > MaxHandlers {
		return fmt.Errorf("%d handlers, want at most %d", len(m.Handlers), MaxHandlers)
	}
	if len(m.Files)+len(m.Handlers) == 0 {
		return errors.New("no files and no handlers")
	}
	if m.Created < 0 || m.Created > MaxCreated {
		return fmt.Errorf("created time %d out of 0..%d", m.Created, int64(MaxCreated))
	}
	var total uint64
	for i, e := range m.Files {
		if err := CheckPath(e.Path); err != nil {
			return fmt.Errorf("file %d: %w", i, err)
		}
		if i > 0 && m.Files[i-1].Path >= e.Path {
			return fmt.Errorf("file %d: path not after the previous one (unsorted or repeated)", i)
		}
		if e.Size > MaxFileSize {
			return fmt.Errorf("file %d: size %d exceeds %d", i, e.Size, MaxFileSize)
		}
		if err := checkContentType(e.ContentType); err != nil {
			return fmt.Errorf("file %d: %w", i, err)
		}
		total += e.Size
	}
	if total > MaxSiteSize {
		return fmt.Errorf("files total %d bytes, over %d", total, MaxSiteSize)
	}
	for i, h := range m.Handlers {
		if err := checkPrefix(h.Prefix); err != nil {
			return fmt.Errorf("handler %d: %w", i, err)
		}
		if i > 0 && m.Handlers[i-1].Prefix >= h.Prefix {
			return fmt.Errorf("handler %d: prefix not after the previous one (unsorted or repeated)", i)
		}
		if err := manifest.CheckFunctionName(h.Function); err != nil {
			return fmt.Errorf("handler %d: function %w", i, err)
		}
	}
	return nil
}

// appendBody appends everything the signature covers after the network.
func (m *Manifest) appendBody(b []byte) ([]byte, error) {
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("sites: %w", err)
	}
	return m.appendFields(b), nil
}

// appendFields appends the fields the signature covers, unchecked.
func (m *Manifest) appendFields(b []byte) []byte {
	b = append(b, Version)
	b = append(b, m.Site[:]...)
	b = binary.BigEndian.AppendUint64(b, m.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(m.Created))
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Files)))
	for _, e := range m.Files {
		b = binary.BigEndian.AppendUint16(b, uint16(len(e.Path)))
		b = append(b, e.Path...)
		b = append(b, e.Hash[:]...)
		b = binary.BigEndian.AppendUint64(b, e.Size)
		b = append(b, byte(len(e.ContentType)))
		b = append(b, e.ContentType...)
	}
	b = append(b, byte(len(m.Handlers)))
	for _, h := range m.Handlers {
		b = binary.BigEndian.AppendUint16(b, uint16(len(h.Prefix)))
		b = append(b, h.Prefix...)
		b = append(b, h.Module[:]...)
		b = append(b, byte(len(h.Function)))
		b = append(b, h.Function...)
	}
	return b
}

// reader reads the fields of an encoded manifest; a read past the end sets
// short and returns zeroes.
type reader struct {
	b     []byte
	p     int
	short bool
}

func (r *reader) take(n int) []byte {
	if r.short || n > len(r.b)-r.p {
		r.short = true
		return nil
	}
	s := r.b[r.p : r.p+n]
	r.p += n
	return s
}

func (r *reader) u8() int {
	if s := r.take(1); s != nil {
		return int(s[0])
	}
	return 0
}

func (r *reader) u16() int {
	if s := r.take(2); s != nil {
		return int(binary.BigEndian.Uint16(s))
	}
	return 0
}

func (r *reader) u64() uint64 {
	if s := r.take(8); s != nil {
		return binary.BigEndian.Uint64(s)
	}
	return 0
}

// Parse decodes a site manifest. It checks the layout and every field's
// bounds (unknown version, counts and lengths out of range or past the end,
// bad paths, unsorted or repeated paths, sizes over the limits, bad content
// types and function names, trailing bytes); the signature is checked by
// Verify.
func Parse(b []byte) (*Manifest, error) {
	if len(b) < MinManifestSize {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the smallest manifest (%d)", ErrMalformed, len(b), MinManifestSize)
	}
	if len(b) > MaxManifestSize {
		return nil, fmt.Errorf("%w: %d bytes, longer than the largest manifest (%d)", ErrMalformed, len(b), MaxManifestSize)
	}
	if b[0] != Version {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrMalformed, b[0], Version)
	}
	r := &reader{b: b[:len(b)-keys.SignatureSize], p: 1}
	m := &Manifest{}
	copy(m.Site[:], r.take(32))
	m.Seq = r.u64()
	created := r.u64()
	if created > MaxCreated {
		return nil, fmt.Errorf("%w: created time %d over %d", ErrMalformed, created, uint64(MaxCreated))
	}
	m.Created = int64(created)
	n := r.u16()
	if n > MaxFiles {
		return nil, fmt.Errorf("%w: %d files, want at most %d", ErrMalformed, n, MaxFiles)
	}
	if n > 0 {
		m.Files = make([]Entry, 0, n)
	}
	for i := range n {
		var e Entry
		l := r.u16()
		if l > MaxPathLen {
			return nil, fmt.Errorf("%w: file %d: path of %d bytes over %d", ErrMalformed, i, l, MaxPathLen)
		}
		e.Path = string(r.take(l))
		copy(e.Hash[:], r.take(32))
		e.Size = r.u64()
		e.ContentType = string(r.take(r.u8()))
		if r.short {
			return nil, fmt.Errorf("%w: file %d past the end", ErrMalformed, i)
		}
		m.Files = append(m.Files, e)
	}
	nh := r.u8()
	if nh > MaxHandlers {
		return nil, fmt.Errorf("%w: %d handlers, want at most %d", ErrMalformed, nh, MaxHandlers)
	}
	for i := range nh {
		var h Handler
		l := r.u16()
		if l > MaxPathLen {
			return nil, fmt.Errorf("%w: handler %d: prefix of %d bytes over %d", ErrMalformed, i, l, MaxPathLen)
		}
		h.Prefix = string(r.take(l))
		copy(h.Module[:], r.take(32))
		h.Function = string(r.take(r.u8()))
		if r.short {
			return nil, fmt.Errorf("%w: handler %d past the end", ErrMalformed, i)
		}
		m.Handlers = append(m.Handlers, h)
	}
	if r.short {
		return nil, fmt.Errorf("%w: truncated before the handler count", ErrMalformed)
	}
	if rest := len(r.b) - r.p; rest != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes before the signature", ErrMalformed, rest)
	}
	copy(m.Signature[:], b[len(b)-keys.SignatureSize:])
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return m, nil
}
