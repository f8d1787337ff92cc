package sites

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// maxStoredBlob is the largest file Get reads: a file or a manifest.
const maxStoredBlob = max(MaxFileSize, MaxManifestSize)

// tempPrefix starts the names of files being written; OpenStore removes
// those a crash left behind.
const tempPrefix = ".tmp-"

// Store keeps blobs on disk in one directory, each in a file named by the
// lowercase hex SHA-256 of its content. Every access goes through an
// os.Root, so no name (nor a symbolic link planted in the directory)
// reaches outside it. It is safe for concurrent use.
//
// Get does not verify what it reads: a file changed on disk is returned
// as it is. Clients check every byte they fetch (CheckFile,
// Pointer.CheckManifest), so a host is trusted for availability only.
type Store struct {
	root *os.Root
}

// OpenStore opens the store in dir, creating the directory (0700) if it
// does not exist, and removes temporary files a crash left behind.
func OpenStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sites: store: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("sites: store: %w", err)
	}
	s := &Store{root: root}
	ents, err := fs.ReadDir(root.FS(), ".")
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("sites: store: %w", err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tempPrefix) && e.Type().IsRegular() {
			_ = root.Remove(e.Name())
		}
	}
	return s, nil
}

// Close releases the store's directory.
func (s *Store) Close() error { return s.root.Close() }

// blobName is the file name of hash.
func blobName(hash [32]byte) string { return hex.EncodeToString(hash[:]) }

// Put stores content and returns its SHA-256. It writes a temporary file
// (0600), syncs it and renames it over the blob's name, so a blob is
// either absent or complete.
func (s *Store) Put(content []byte) ([32]byte, error) {
	hash := sha256.Sum256(content)
	if err := s.writeFile(blobName(hash), content); err != nil {
		return [32]byte{}, err
	}
	return hash, nil
}

// writeFile writes data to name atomically: a temporary file, then a
// rename.
func (s *Store) writeFile(name string, data []byte) error {
	tmp := tempPrefix + rand.Text()
	f, err := s.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("sites: store: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.root.Rename(tmp, name)
	}
	if err != nil {
		_ = s.root.Remove(tmp)
		return fmt.Errorf("sites: store: %w", err)
	}
	return nil
}

// Get returns the stored content of hash, as it is on disk (not verified).
// The error wraps fs.ErrNotExist if the store does not hold it.
func (s *Store) Get(hash [32]byte) ([]byte, error) {
	return s.readFile(blobName(hash), maxStoredBlob)
}

// readFile reads a regular file of at most limit bytes.
func (s *Store) readFile(name string, limit int64) ([]byte, error) {
	f, err := s.root.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("sites: store: not held: %w", fs.ErrNotExist)
		}
		return nil, fmt.Errorf("sites: store: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("sites: store: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, errors.New("sites: store: not a regular file")
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("sites: store: file of %d bytes exceeds %d", st.Size(), limit)
	}
	b := make([]byte, 0, st.Size())
	b, err = readAtMost(f, b, limit)
	if err != nil {
		return nil, fmt.Errorf("sites: store: %w", err)
	}
	return b, nil
}

// readAtMost reads r to its end into b, refusing more than limit bytes (the
// file may grow after its Stat).
func readAtMost(r io.Reader, b []byte, limit int64) ([]byte, error) {
	var buf [32 << 10]byte
	for {
		n, err := r.Read(buf[:])
		if int64(len(b)+n) > limit {
			return nil, fmt.Errorf("file exceeds %d bytes", limit)
		}
		b = append(b, buf[:n]...)
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// Has reports whether the store holds a blob of hash (present on disk; its
// content is not read).
func (s *Store) Has(hash [32]byte) bool {
	st, err := s.root.Stat(blobName(hash))
	return err == nil && st.Mode().IsRegular()
}

// Remove deletes the blob of hash. Removing a blob the store does not hold
// is not an error.
func (s *Store) Remove(hash [32]byte) error {
	if err := s.root.Remove(blobName(hash)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("sites: store: %w", err)
	}
	return nil
}

// Size returns the bytes of the blobs on disk.
func (s *Store) Size() int64 {
	ents, err := fs.ReadDir(s.root.FS(), ".")
	if err != nil {
		return 0
	}
	var n int64
	for _, e := range ents {
		if !isBlobName(e.Name()) || !e.Type().IsRegular() {
			continue
		}
		if info, err := e.Info(); err == nil {
			n += info.Size()
		}
	}
	return n
}

// isBlobName reports whether name is 64 lowercase hex digits.
func isBlobName(name string) bool {
	_, ok := parseHash(name)
	return ok
}

// parseHash decodes 64 lowercase hex digits.
func parseHash(s string) ([32]byte, bool) {
	var h [32]byte
	if len(s) != 64 {
		return h, false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return h, false
		}
	}
	_, err := hex.Decode(h[:], []byte(s))
	return h, err == nil
}
