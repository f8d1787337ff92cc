package manifest

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// Manifest layout limits (spec/compute.md §1).
const (
	// Version is the only manifest version.
	Version = 1
	// SignatureContext starts what a manifest signature covers.
	SignatureContext = "darkmatter module manifest v1\x00"

	MaxFunctions   = 64
	MaxFunctionLen = 64
	MaxNetworkLen  = keys.MaxNetworkLen
	// MaxModuleSize is the largest module: the largest blob.
	MaxModuleSize = MaxBlobSize
	// MaxMemoryPages is WebAssembly's 32-bit limit (4 GiB of 64 KiB pages).
	MaxMemoryPages = 65536
	// MaxTimeoutMS is one hour.
	MaxTimeoutMS = 3_600_000
	// MaxOutputLimit is the largest output a manifest may request.
	MaxOutputLimit = 16 << 20
	MaxDepth       = 16
	MaxFanOut      = 64
	// MaxCreated is 9999-12-31T23:59:59Z, as for DHT expiries.
	MaxCreated = 253402300799

	fixedBefore = 1 + 32 + 4 + 32 + 1       // version .. function count
	fixedAfter  = 2 + 4 + 4 + 4 + 1 + 1 + 8 // permissions .. created
	// MinManifestSize is the smallest encoded manifest (160 bytes): one
	// 1-byte function.
	MinManifestSize = fixedBefore + 2 + fixedAfter + keys.SignatureSize
	// MaxManifestSize is the largest encoded manifest (4318 bytes).
	MaxManifestSize = fixedBefore + MaxFunctions*(1+MaxFunctionLen) + fixedAfter + keys.SignatureSize
)

// Permissions is the manifest's permission bitmask.
type Permissions uint16

// Permission bits; the others must be zero.
const (
	PermSubCalls    Permissions = 1 << 0 // the module may call other modules
	PermDataSources Permissions = 1 << 1 // the module may read blobs
	permAll                     = PermSubCalls | PermDataSources
)

// Limits are the resources a module asks for. An executor runs it with the
// smaller of these and its own policy.
type Limits struct {
	MemoryPages uint32 // 64 KiB WebAssembly pages, 1..65536
	TimeoutMS   uint32 // wall time, 1..3600000
	MaxOutput   uint32 // output bytes, 1..16 MiB
	MaxDepth    uint8  // sub-call depth below this call, 0..16
	MaxFanOut   uint8  // sub-calls one call may make, 0..64
}

// Manifest is a module's signed manifest.
type Manifest struct {
	ModuleHash  [32]byte // SHA-256 of the module bytes
	ModuleSize  uint32
	Author      keys.IdentityPublicKey
	Functions   []string
	Permissions Permissions
	Limits      Limits
	Created     int64 // unix seconds
	Signature   [keys.SignatureSize]byte
}

// ErrMalformed is wrapped by every layout error of Parse and ParseBlobManifest.
var ErrMalformed = errors.New("manifest: malformed")

// ModuleHash returns the SHA-256 of a module's bytes, its address.
func ModuleHash(code []byte) [32]byte { return sha256.Sum256(code) }

// Has reports whether the manifest exports function.
func (m *Manifest) Has(function string) bool {
	for _, f := range m.Functions {
		if f == function {
			return true
		}
	}
	return false
}

// CheckCode checks that code is the module the manifest names: its size
// and SHA-256.
func (m *Manifest) CheckCode(code []byte) error {
	if uint64(len(code)) != uint64(m.ModuleSize) {
		return fmt.Errorf("manifest: module of %d bytes, manifest says %d", len(code), m.ModuleSize)
	}
	if ModuleHash(code) != m.ModuleHash {
		return errors.New("manifest: module bytes do not match the manifest's hash")
	}
	return nil
}

// Sign sets m.Author to k's public key, signs m for network and returns the
// encoded manifest. It refuses any field out of its bounds.
func (m *Manifest) Sign(network string, k *keys.IdentityPrivateKey) ([]byte, error) {
	if err := checkNetwork(network); err != nil {
		return nil, err
	}
	m.Author = k.Public()
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

// Verify checks that m is within its bounds and carries its author's
// signature for network. A manifest of another network never verifies.
func (m *Manifest) Verify(network string) error {
	if err := checkNetwork(network); err != nil {
		return err
	}
	body, err := m.appendBody(nil)
	if err != nil {
		return err
	}
	if !m.Author.Verify(signedBytes(network, body), m.Signature[:]) {
		return errors.New("manifest: bad signature (tampered, another network, or not the author's)")
	}
	return nil
}

func checkNetwork(network string) error {
	if err := keys.CheckNetwork(network); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	return nil
}

func signedBytes(network string, body []byte) []byte {
	return keys.AppendSigned(make([]byte, 0, len(SignatureContext)+1+len(network)+len(body)), SignatureContext, network, body)
}

// check reports the first field out of its bounds.
func (m *Manifest) check() error {
	if m.ModuleSize == 0 || m.ModuleSize > MaxModuleSize {
		return fmt.Errorf("module size %d out of 1..%d", m.ModuleSize, MaxModuleSize)
	}
	if len(m.Functions) == 0 || len(m.Functions) > MaxFunctions {
		return fmt.Errorf("%d functions, want 1..%d", len(m.Functions), MaxFunctions)
	}
	seen := make(map[string]bool, len(m.Functions))
	for i, f := range m.Functions {
		if err := CheckFunctionName(f); err != nil {
			return fmt.Errorf("function %d: %w", i, err)
		}
		if seen[f] {
			return fmt.Errorf("function %d: %q listed twice", i, f)
		}
		seen[f] = true
	}
	if m.Permissions&^permAll != 0 {
		return fmt.Errorf("permissions %#04x set unknown bits", uint16(m.Permissions))
	}
	l := m.Limits
	switch {
	case l.MemoryPages == 0 || l.MemoryPages > MaxMemoryPages:
		return fmt.Errorf("memory limit of %d pages out of 1..%d", l.MemoryPages, MaxMemoryPages)
	case l.TimeoutMS == 0 || l.TimeoutMS > MaxTimeoutMS:
		return fmt.Errorf("timeout of %d ms out of 1..%d", l.TimeoutMS, MaxTimeoutMS)
	case l.MaxOutput == 0 || l.MaxOutput > MaxOutputLimit:
		return fmt.Errorf("output limit of %d bytes out of 1..%d", l.MaxOutput, MaxOutputLimit)
	case l.MaxDepth > MaxDepth:
		return fmt.Errorf("sub-call depth %d over %d", l.MaxDepth, MaxDepth)
	case l.MaxFanOut > MaxFanOut:
		return fmt.Errorf("fan-out %d over %d", l.MaxFanOut, MaxFanOut)
	}
	if m.Permissions&PermSubCalls == 0 {
		if l.MaxDepth != 0 || l.MaxFanOut != 0 {
			return errors.New("sub-call depth and fan-out must be 0 without the sub-call permission")
		}
	} else if l.MaxDepth == 0 || l.MaxFanOut == 0 {
		return errors.New("sub-call depth and fan-out must be at least 1 with the sub-call permission")
	}
	if m.Created < 0 || m.Created > MaxCreated {
		return fmt.Errorf("created time %d out of 0..%d", m.Created, int64(MaxCreated))
	}
	return nil
}

// CheckFunctionName checks a function name: 1..64 bytes of [A-Za-z0-9_].
func CheckFunctionName(f string) error {
	if len(f) == 0 || len(f) > MaxFunctionLen {
		return fmt.Errorf("name of %d bytes, want 1..%d", len(f), MaxFunctionLen)
	}
	for i := 0; i < len(f); i++ {
		c := f[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return fmt.Errorf("name %q: byte %d is not [A-Za-z0-9_]", f, i)
		}
	}
	return nil
}

// appendBody appends everything the signature covers after the network.
func (m *Manifest) appendBody(b []byte) ([]byte, error) {
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return m.appendFields(b), nil
}

// appendFields appends the fields the signature covers, unchecked.
func (m *Manifest) appendFields(b []byte) []byte {
	b = append(b, Version)
	b = append(b, m.ModuleHash[:]...)
	b = binary.BigEndian.AppendUint32(b, m.ModuleSize)
	b = append(b, m.Author[:]...)
	b = append(b, byte(len(m.Functions)))
	for _, f := range m.Functions {
		b = append(b, byte(len(f)))
		b = append(b, f...)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(m.Permissions))
	b = binary.BigEndian.AppendUint32(b, m.Limits.MemoryPages)
	b = binary.BigEndian.AppendUint32(b, m.Limits.TimeoutMS)
	b = binary.BigEndian.AppendUint32(b, m.Limits.MaxOutput)
	b = append(b, m.Limits.MaxDepth, m.Limits.MaxFanOut)
	return binary.BigEndian.AppendUint64(b, uint64(m.Created))
}

// Parse decodes a manifest. It checks the layout and every field's bounds
// (unknown version, lengths past the end, bad names, unknown permission
// bits, limits out of range, trailing bytes); the signature is checked by
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
	m := &Manifest{}
	copy(m.ModuleHash[:], b[1:33])
	m.ModuleSize = binary.BigEndian.Uint32(b[33:37])
	copy(m.Author[:], b[37:69])
	n := int(b[69])
	if n == 0 || n > MaxFunctions {
		return nil, fmt.Errorf("%w: %d functions, want 1..%d", ErrMalformed, n, MaxFunctions)
	}
	p := fixedBefore
	m.Functions = make([]string, 0, n)
	for i := range n {
		if p >= len(b) {
			return nil, fmt.Errorf("%w: function %d past the end", ErrMalformed, i)
		}
		l := int(b[p])
		p++
		if l == 0 || l > MaxFunctionLen {
			return nil, fmt.Errorf("%w: function %d: name of %d bytes, want 1..%d", ErrMalformed, i, l, MaxFunctionLen)
		}
		if p+l > len(b) {
			return nil, fmt.Errorf("%w: function %d past the end", ErrMalformed, i)
		}
		m.Functions = append(m.Functions, string(b[p:p+l]))
		p += l
	}
	if rest := len(b) - p; rest != fixedAfter+keys.SignatureSize {
		if rest < fixedAfter+keys.SignatureSize {
			return nil, fmt.Errorf("%w: truncated after the functions (%d bytes left, want %d)", ErrMalformed, rest, fixedAfter+keys.SignatureSize)
		}
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, rest-fixedAfter-keys.SignatureSize)
	}
	m.Permissions = Permissions(binary.BigEndian.Uint16(b[p:]))
	m.Limits.MemoryPages = binary.BigEndian.Uint32(b[p+2:])
	m.Limits.TimeoutMS = binary.BigEndian.Uint32(b[p+6:])
	m.Limits.MaxOutput = binary.BigEndian.Uint32(b[p+10:])
	m.Limits.MaxDepth = b[p+14]
	m.Limits.MaxFanOut = b[p+15]
	created := binary.BigEndian.Uint64(b[p+16:])
	if created > MaxCreated {
		return nil, fmt.Errorf("%w: created time %d over %d", ErrMalformed, created, uint64(MaxCreated))
	}
	m.Created = int64(created)
	copy(m.Signature[:], b[p+24:])
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return m, nil
}
