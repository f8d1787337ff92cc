package keys

import (
	"bytes"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/darkmatter/darkmatter/internal/atomicfile"
)

// PEM block types of key files, one per role.
const (
	IdentityKeyType = "DARKMATTER IDENTITY KEY"
	LinkKeyType     = "DARKMATTER LINK KEY"
	OnionKeyType    = "DARKMATTER ONION KEY"
	KEMKeyType      = "DARKMATTER KEM KEY"
	ServiceKeyType  = "DARKMATTER SERVICE KEY"
	// ClientAuthKeyType holds a hidden-service client's authorisation key.
	ClientAuthKeyType = "DARKMATTER CLIENT AUTH KEY"
	// OnionKeysType holds a relay's rotating onion pairs
	// (WriteOnionKeysFile).
	OnionKeysType = "DARKMATTER ONION KEYS"
)

// Implementation limits of key files.
const (
	// FileMode is the permission of key files written by WriteFile.
	FileMode os.FileMode = 0o600
	// DirMode is the permission of key directories made by LoadOrGenerateNodeKeys.
	DirMode os.FileMode = 0o700
	// maxKeyFileSize bounds how much of a key file is read; real ones are
	// under 200 bytes.
	maxKeyFileSize = 16 << 10
)

// roleNames maps a PEM type to the name used in error messages.
var roleNames = map[string]string{
	IdentityKeyType:   "an identity key",
	LinkKeyType:       "a link key",
	OnionKeyType:      "an onion key",
	KEMKeyType:        "a KEM key",
	ServiceKeyType:    "a service key",
	ClientAuthKeyType: "a client auth key",
	OnionKeysType:     "onion keys",
}

// seedSizes maps a PEM type to the length of its body.
var seedSizes = map[string]int{
	IdentityKeyType:   SeedSize,
	LinkKeyType:       32,
	OnionKeyType:      32,
	KEMKeyType:        KEMSeedSize,
	ServiceKeyType:    SeedSize,
	ClientAuthKeyType: 32,
	OnionKeysType:     2 * onionPairRecordSize,
}

// PrivateKey is any of the private key types. It is sealed: only this
// package's types implement it.
type PrivateKey interface {
	// keyFileBlock returns the PEM type and body (the seed) of the key file.
	keyFileBlock() (pemType string, seed []byte)
}

func (k *IdentityPrivateKey) keyFileBlock() (string, []byte) { return IdentityKeyType, k.seed[:] }
func (k *LinkPrivateKey) keyFileBlock() (string, []byte)     { return LinkKeyType, k.k.Bytes() }
func (k *OnionPrivateKey) keyFileBlock() (string, []byte)    { return OnionKeyType, k.b[:] }
func (k *KEMPrivateKey) keyFileBlock() (string, []byte)      { return KEMKeyType, k.seed[:] }
func (k *ServicePrivateKey) keyFileBlock() (string, []byte)  { return ServiceKeyType, k.seed[:] }

// EncodeKeyFile returns the key file contents for k: one PEM block.
func EncodeKeyFile(k PrivateKey) []byte {
	typ, seed := k.keyFileBlock()
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: seed})
}

// WriteFile writes k to path as a key file with mode 0600. It writes a
// temporary file in the same directory and renames it over path, so readers
// see either the old file or the whole new one. An existing file at path is
// replaced.
func WriteFile(path string, k PrivateKey) (err error) {
	if k == nil {
		return fmt.Errorf("keys: write %s: nil key", path)
	}
	return writeKeyFile(path, EncodeKeyFile(k))
}

// writeKeyFile writes data to path as WriteFile does.
func writeKeyFile(path string, data []byte) error {
	if err := atomicfile.Write(path, data, FileMode); err != nil {
		return fmt.Errorf("keys: write %s: %w", path, err)
	}
	return nil
}

// LoadIdentityFile reads an identity key file.
func LoadIdentityFile(path string) (*IdentityPrivateKey, error) {
	seed, err := loadKeyFile(path, IdentityKeyType)
	if err != nil {
		return nil, err
	}
	return IdentityFromSeed([SeedSize]byte(seed)), nil
}

// LoadLinkFile reads a link key file.
func LoadLinkFile(path string) (*LinkPrivateKey, error) {
	seed, err := loadKeyFile(path, LinkKeyType)
	if err != nil {
		return nil, err
	}
	return LinkFromBytes([32]byte(seed)), nil
}

// LoadOnionFile reads an onion key file.
func LoadOnionFile(path string) (*OnionPrivateKey, error) {
	seed, err := loadKeyFile(path, OnionKeyType)
	if err != nil {
		return nil, err
	}
	return OnionFromBytes([32]byte(seed)), nil
}

// LoadKEMFile reads a KEM key file.
func LoadKEMFile(path string) (*KEMPrivateKey, error) {
	seed, err := loadKeyFile(path, KEMKeyType)
	if err != nil {
		return nil, err
	}
	return KEMFromSeed([KEMSeedSize]byte(seed)), nil
}

// LoadServiceFile reads a service key file.
func LoadServiceFile(path string) (*ServicePrivateKey, error) {
	seed, err := loadKeyFile(path, ServiceKeyType)
	if err != nil {
		return nil, err
	}
	return ServiceFromSeed([SeedSize]byte(seed)), nil
}

// ErrPermissions matches (with errors.Is) the *PermissionError returned by
// the Load*File functions for key files that other users may access.
var ErrPermissions = errors.New("keys: key file permissions are too open")

// PermissionError reports a key file that the group or other users may
// access. Its message follows ssh's.
type PermissionError struct {
	Path string
	Perm os.FileMode
}

func (e *PermissionError) Error() string {
	return fmt.Sprintf("keys: permissions %04o for %s are too open: a key file must be accessible only by its owner (chmod 600 %s)", uint32(e.Perm), e.Path, e.Path)
}

// Is reports whether target is ErrPermissions.
func (e *PermissionError) Is(target error) bool { return target == ErrPermissions }

// loadKeyFile opens path, refuses it if its permissions are too open, and
// parses it as a key file of type wantType. Every error names the path.
func loadKeyFile(path, wantType string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("keys: load %s: %w", roleNames[wantType], err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("keys: load %s: %w", roleNames[wantType], err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("keys: load %s: %s is not a regular file", roleNames[wantType], path)
	}
	if err := checkPermissions(path, fi.Mode()); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("keys: load %s: %w", roleNames[wantType], err)
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("keys: %s is larger than %d bytes, not a key file", path, maxKeyFileSize)
	}
	seed, err := parseKeyFile(data, wantType)
	if err != nil {
		return nil, fmt.Errorf("keys: %s: %w", path, err)
	}
	return seed, nil
}

// parseKeyFile parses a key file's contents: optional leading and trailing
// white space around exactly one PEM block of type wantType, without
// headers, whose body is exactly the seed length of that type. Its errors
// carry no "keys:" prefix; loadKeyFile adds the prefix and the path.
func parseKeyFile(data []byte, wantType string) ([]byte, error) {
	wantLen, ok := seedSizes[wantType]
	if !ok {
		return nil, fmt.Errorf("unknown key type %q", wantType)
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if !bytes.HasPrefix(trimmed, []byte("-----BEGIN ")) {
		return nil, fmt.Errorf("not a PEM key file (want a %s block)", wantType)
	}
	block, rest := pem.Decode(trimmed)
	if block == nil {
		return nil, fmt.Errorf("not a PEM key file (want a %s block)", wantType)
	}
	if block.Type != wantType {
		if _, ok := roleNames[block.Type]; ok {
			return nil, fmt.Errorf("file holds a %s, not %s", block.Type, roleNames[wantType])
		}
		return nil, fmt.Errorf("file holds a %q PEM block, not %s (%s)", block.Type, roleNames[wantType], wantType)
	}
	if len(block.Headers) != 0 {
		return nil, fmt.Errorf("%s block has PEM headers; key files have none", wantType)
	}
	if len(block.Bytes) != wantLen {
		return nil, fmt.Errorf("%s is %d bytes, want %d", wantType, len(block.Bytes), wantLen)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("trailing data after the %s block", wantType)
	}
	return block.Bytes, nil
}
