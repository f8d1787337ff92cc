package keys

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Names of the key files in a node's key directory.
const (
	IdentityFileName = "identity.key"
	LinkFileName     = "link.key"
	OnionFileName    = "onion.key"
	KEMFileName      = "kem.key"
)

// NodeKeys are the private keys a node needs: its identity, its link key,
// its onion (circuit handshake) key and its ML-KEM key.
type NodeKeys struct {
	Identity *IdentityPrivateKey
	Link     *LinkPrivateKey
	Onion    *OnionPrivateKey
	KEM      *KEMPrivateKey
}

// NodeID returns the NodeID of the identity key.
func (n *NodeKeys) NodeID() NodeID { return n.Identity.Public().NodeID() }

// GenerateNodeKeys generates a fresh set of node keys in memory, reading the
// seeds from rand (nil means crypto/rand) in the order identity (32 bytes),
// link (32), onion (32), KEM (64).
func GenerateNodeKeys(rand io.Reader) (*NodeKeys, error) {
	var n NodeKeys
	var err error
	if n.Identity, err = GenerateIdentity(rand); err != nil {
		return nil, err
	}
	if n.Link, err = GenerateLink(rand); err != nil {
		return nil, err
	}
	if n.Onion, err = GenerateOnion(rand); err != nil {
		return nil, err
	}
	if n.KEM, err = GenerateKEM(rand); err != nil {
		return nil, err
	}
	return &n, nil
}

// LoadOrGenerateNodeKeys loads the node keys in dir (identity.key, link.key,
// onion.key, kem.key). It creates dir with mode 0700 if it does not exist,
// and generates and writes each missing key, reading its seed from rand (nil
// means crypto/rand) in the order of GenerateNodeKeys. A key file that exists
// but cannot be loaded (malformed, wrong type, too open, unreadable) is an
// error: it is never overwritten.
func LoadOrGenerateNodeKeys(dir string, rand io.Reader) (*NodeKeys, error) {
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return nil, fmt.Errorf("keys: key directory: %w", err)
	}
	var n NodeKeys
	var err error
	if n.Identity, err = loadOrGenerate(filepath.Join(dir, IdentityFileName), rand, LoadIdentityFile, GenerateIdentity); err != nil {
		return nil, err
	}
	if n.Link, err = loadOrGenerate(filepath.Join(dir, LinkFileName), rand, LoadLinkFile, GenerateLink); err != nil {
		return nil, err
	}
	if n.Onion, err = loadOrGenerate(filepath.Join(dir, OnionFileName), rand, LoadOnionFile, GenerateOnion); err != nil {
		return nil, err
	}
	if n.KEM, err = loadOrGenerate(filepath.Join(dir, KEMFileName), rand, LoadKEMFile, GenerateKEM); err != nil {
		return nil, err
	}
	return &n, nil
}

func loadOrGenerate[K PrivateKey](path string, rand io.Reader, load func(string) (K, error), gen func(io.Reader) (K, error)) (K, error) {
	var zero K
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return load(path)
	case !errors.Is(err, fs.ErrNotExist):
		return zero, fmt.Errorf("keys: %w", err)
	}
	k, err := gen(rand)
	if err != nil {
		return zero, err
	}
	if err := WriteFile(path, k); err != nil {
		return zero, err
	}
	return k, nil
}
