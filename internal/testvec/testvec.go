package testvec

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// Dir is the vector directory, relative to the module root.
const Dir = "spec/vectors"

var update = flag.Bool("update", false, "rewrite the "+Dir+" files this package's tests check, from this implementation")

// Update reports whether the test binary runs with -update.
func Update() bool { return *update }

// moduleRoot is the nearest directory at or above the working directory
// (a test's package directory) that holds go.mod.
var moduleRoot = sync.OnceValues(func() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testvec: no go.mod above the working directory")
		}
		dir = parent
	}
})

// Path returns the path of spec/vectors/name.
func Path(name string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, filepath.FromSlash(Dir), name), nil
}

// Read decodes spec/vectors/name into v.
func Read(name string, v any) error {
	path, err := Path(name)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s/%s: %w", Dir, name, err)
	}
	return nil
}

// Load decodes spec/vectors/name into v, or fails the test.
func Load(t testing.TB, name string, v any) {
	t.Helper()
	if err := Read(name, v); err != nil {
		t.Fatal(err)
	}
}

// LoadOrGenerate returns the vectors in spec/vectors/name or, with -update,
// those generate returns: the inputs, whose outputs the test then fills in
// with [CheckHex] and [Check] before it calls [Save].
func LoadOrGenerate[T any](t testing.TB, name string, generate func() *T) *T {
	t.Helper()
	if Update() {
		return generate()
	}
	v := new(T)
	Load(t, name, v)
	return v
}

// Save writes v to spec/vectors/name as indented JSON with a trailing
// newline, or fails the test.
func Save(t testing.TB, name string, v any) {
	t.Helper()
	path, err := Path(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := write(path, v); err != nil {
		t.Fatal(err)
	}
	t.Logf("rewrote %s/%s", Dir, name)
}

func write(path string, v any) error {
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(out, '\n'), 0o644)
}

// Hex decodes s, or fails the test.
func Hex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// Seq returns the n bytes start, start+1, ... (wrapping at 255).
func Seq(start byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

// Check compares got, computed by the implementation, with *field from the
// vector file and reports a difference as an error named what. With -update
// it stores got in *field instead.
func Check(t testing.TB, what string, field *string, got string) {
	t.Helper()
	check(t, Update(), what, field, got, 1, "character")
}

// CheckHex is [Check] for a field that holds got in hex. A difference is
// reported at its byte offset.
func CheckHex(t testing.TB, what string, field *string, got []byte) {
	t.Helper()
	check(t, Update(), what, field, hex.EncodeToString(got), 2, "byte")
}

// shortValue is the longest value a mismatch prints in full.
const shortValue = 160

func check(t testing.TB, update bool, what string, field *string, got string, per int, unit string) {
	t.Helper()
	if update {
		*field = got
		return
	}
	have := *field
	if have == got {
		return
	}
	if what == "" {
		what = "vector mismatch"
	}
	if len(have) <= shortValue && len(got) <= shortValue {
		t.Errorf("%s:\nfile     %s\ncomputed %s", what, have, got)
		return
	}
	i := 0
	for i < len(have) && i < len(got) && have[i] == got[i] {
		i++
	}
	t.Errorf("%s: differs from the file at %s %d (file has %d %ss, computed %d)",
		what, unit, i/per, len(have)/per, unit, len(got)/per)
}
