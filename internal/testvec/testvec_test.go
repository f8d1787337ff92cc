package testvec

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) { r.Errorf(format, args...) }

func TestPath(t *testing.T) {
	p, err := Path("keys.json")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(filepath.ToSlash(p), "/spec/vectors/keys.json") {
		t.Fatalf("Path = %s", p)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(filepath.Dir(filepath.Dir(p))), "go.mod")); err != nil {
		t.Fatalf("%s is not below the module root: %v", p, err)
	}
}

func TestRead(t *testing.T) {
	var v struct {
		Comment string `json:"comment"`
	}
	Load(t, "keys.json", &v)
	if v.Comment == "" {
		t.Fatal("keys.json has no comment")
	}
	if err := Read("no such file.json", &v); !os.IsNotExist(err) {
		t.Fatalf("missing file: %v", err)
	}
}

// TestWrite checks the file format every vector file keeps: two-space
// indented JSON with a trailing newline.
func TestWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.json")
	v := struct {
		A string `json:"a"`
		B []int  `json:"b"`
	}{"x<y", []int{1, 2}}
	if err := write(path, v); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "{\n  \"a\": \"x\\u003cy\",\n  \"b\": [\n    1,\n    2\n  ]\n}\n"
	if string(got) != want {
		t.Fatalf("wrote %q, want %q", got, want)
	}
	// 0644 as the umask allows.
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm()&^0o644 != 0 {
		t.Fatalf("mode %v, %v", fi.Mode(), err)
	}
}

func TestHex(t *testing.T) {
	if got := Hex(t, "00ff10"); !bytes.Equal(got, []byte{0, 0xff, 0x10}) {
		t.Fatalf("Hex = %x", got)
	}
	r := &recorder{TB: t}
	Hex(r, "0g")
	if len(r.errs) != 1 || !strings.Contains(r.errs[0], `bad hex "0g"`) {
		t.Fatalf("bad hex: %q", r.errs)
	}
}

func TestSeq(t *testing.T) {
	if got := Seq(0xfe, 4); !bytes.Equal(got, []byte{0xfe, 0xff, 0, 1}) {
		t.Fatalf("Seq = %x", got)
	}
}

func TestCheck(t *testing.T) {
	// With -update the computed value replaces the file's.
	field := "old"
	r := &recorder{TB: t}
	check(r, true, "f", &field, "new", 1, "character")
	if field != "new" || len(r.errs) != 0 {
		t.Fatalf("update: field %q, errors %q", field, r.errs)
	}

	// Without, the file's value stays and a difference is an error.
	check(r, false, "f", &field, "new", 1, "character")
	if len(r.errs) != 0 {
		t.Fatalf("equal values: %q", r.errs)
	}
	check(r, false, "f", &field, "newer", 1, "character")
	if field != "new" || len(r.errs) != 1 || r.errs[0] != "f:\nfile     new\ncomputed newer" {
		t.Fatalf("short mismatch: field %q, errors %q", field, r.errs)
	}

	// A long hex value is reported by the offset of its first difference.
	r.errs = nil
	long := strings.Repeat("ab", 200)
	field = long
	check(r, false, "h", &field, long[:101]+"0"+long[102:], 2, "byte")
	if len(r.errs) != 1 || r.errs[0] != "h: differs from the file at byte 50 (file has 200 bytes, computed 200)" {
		t.Fatalf("long mismatch: %q", r.errs)
	}
}

func TestCheckHex(t *testing.T) {
	if Update() {
		t.Skip("-update")
	}
	field := "00ff"
	CheckHex(t, "f", &field, []byte{0, 0xff})
	Check(t, "f", &field, "00ff")
}
