package names

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// Bounds of a petnames file (spec/names.md §6).
const (
	MaxPetnamesSize = 1 << 20 // bytes of a file
	MaxPetnames     = 10000   // entries of a file
	maxPetnameLine  = 1024    // bytes of a line
)

// Petnames is a user's own names: each maps a name to a .dark address
// and overrides the network. The zero value and nil hold none. It is
// read-only once parsed, so safe for concurrent use.
type Petnames struct {
	m map[string]string
}

// ParsePetnames reads a petnames file: UTF-8 lines of `name address`
// separated by spaces or tabs, where '#' starts a comment to the end of
// the line and blank lines are ignored. Names are canonicalised
// (CanonicalName); addresses must be valid .dark addresses (with or
// without the suffix) and are kept in canonical form. A duplicate name,
// a malformed line, a file over MaxPetnamesSize or more than MaxPetnames
// entries is an error naming the line number, never its text.
func ParsePetnames(r io.Reader) (*Petnames, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxPetnamesSize+1))
	if err != nil {
		return nil, fmt.Errorf("names: petnames: %w", err)
	}
	if len(data) > MaxPetnamesSize {
		return nil, fmt.Errorf("names: petnames: file over %d bytes", MaxPetnamesSize)
	}
	p := &Petnames{m: make(map[string]string)}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 256), maxPetnameLine)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Bytes()
		if i := bytes.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		f := bytes.Fields(text)
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("names: petnames line %d: %d fields, want `name address`", line, len(f))
		}
		name, err := CanonicalName(string(f[0]))
		if err != nil {
			return nil, fmt.Errorf("names: petnames line %d: %w", line, err)
		}
		k, err := keys.ParseAddress(string(f[1]))
		if err != nil {
			return nil, fmt.Errorf("names: petnames line %d: %w", line, err)
		}
		if _, dup := p.m[name]; dup {
			return nil, fmt.Errorf("names: petnames line %d: the name is already defined", line)
		}
		if len(p.m) >= MaxPetnames {
			return nil, fmt.Errorf("names: petnames line %d: more than %d entries", line, MaxPetnames)
		}
		p.m[name] = k.Address()
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("names: petnames line %d: %w", line+1, err)
	}
	return p, nil
}

// LoadPetnames reads the petnames file at path.
func LoadPetnames(path string) (*Petnames, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("names: petnames: %w", err)
	}
	defer f.Close()
	return ParsePetnames(f)
}

// Lookup returns the address of name, which is canonicalised first.
func (p *Petnames) Lookup(name string) (string, bool) {
	if p == nil {
		return "", false
	}
	c, err := CanonicalName(name)
	if err != nil {
		return "", false
	}
	a, ok := p.m[c]
	return a, ok
}

// Len returns the number of petnames.
func (p *Petnames) Len() int {
	if p == nil {
		return 0
	}
	return len(p.m)
}
