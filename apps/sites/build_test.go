package sites

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBuildDir(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"index.html":       "<html><title>home</title></html>",
		"a/b.txt":          "b",
		"a-b":              "\x89PNG\r\n\x1a\n....",
		"a/deep/c.css":     "body{}",
		"empty.js":         "",
		".secret":          "key",
		".git/config":      "x",
		"a/.hidden/x.html": "x",
	})
	if err := os.Symlink("index.html", filepath.Join(dir, "home.html")); err != nil {
		t.Fatal(err)
	}
	files, m, err := BuildDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, e := range m.Files {
		paths = append(paths, e.Path)
		if err := CheckFile(e, files[e.Path]); err != nil {
			t.Errorf("%s: %v", e.Path, err)
		}
	}
	want := "/a-b /a/b.txt /a/deep/c.css /empty.js /home.html /index.html"
	if got := strings.Join(paths, " "); got != want {
		t.Fatalf("paths %q, want %q", got, want)
	}
	if len(files) != len(m.Files) {
		t.Fatalf("%d files for %d entries", len(files), len(m.Files))
	}
	types := map[string]string{}
	for _, e := range m.Files {
		types[e.Path] = e.ContentType
	}
	for p, ct := range map[string]string{"/index.html": "text/html; charset=utf-8", "/a/deep/c.css": "text/css; charset=utf-8",
		"/a-b": "image/png", "/empty.js": "text/javascript; charset=utf-8", "/a/b.txt": "text/plain; charset=utf-8"} {
		if types[p] != ct {
			t.Errorf("%s: content type %q, want %q", p, types[p], ct)
		}
	}
	m.Seq, m.Created = 1, 1767225600
	if _, err := m.Sign(testNet, testKey(1)); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.Lookup("/"); got.Kind != File || got.Entry.Path != "/index.html" {
		t.Fatalf("Lookup(/) = %+v", got)
	}
}

func TestBuildRefusesEscapingSymlink(t *testing.T) {
	outside := t.TempDir()
	writeFiles(t, outside, map[string]string{"secret.txt": "secret"})
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"index.html": "x"})
	if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(dir, "leak.txt")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := BuildDir(dir); err == nil {
		t.Fatal("built a site through a link leaving the directory")
	}
	rel := t.TempDir()
	writeFiles(t, rel, map[string]string{"index.html": "x"})
	if err := os.Symlink("../"+filepath.Base(outside)+"/secret.txt", filepath.Join(rel, "leak.txt")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := BuildDir(rel); err == nil {
		t.Fatal("built a site through a relative link leaving the directory")
	}
}

func TestBuildRefusesDirSymlink(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"sub/index.html": "x"})
	if err := os.Symlink("sub", filepath.Join(dir, "loop")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := BuildDir(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("BuildDir: %v", err)
	}
}

func TestBuildRefuses(t *testing.T) {
	if _, _, err := Build(fstest.MapFS{".only-hidden": {Data: []byte("x")}}); err == nil {
		t.Error("built a site of no files")
	}
	if _, _, err := Build(fstest.MapFS{"a\\b": {Data: []byte("x")}}); err == nil {
		t.Error("built a file whose name has a backslash")
	}
	if _, _, err := Build(fstest.MapFS{"big": {Data: make([]byte, MaxFileSize+1)}}); err == nil {
		t.Error("built a file over MaxFileSize")
	}
	many := fstest.MapFS{}
	for i := range MaxFiles + 1 {
		many["f"+itoa(i)] = &fstest.MapFile{}
	}
	if _, _, err := Build(many); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("Build of %d files: %v", MaxFiles+1, err)
	}
	delete(many, "f0")
	if _, m, err := Build(many); err != nil || len(m.Files) != MaxFiles {
		t.Errorf("Build of %d files: %v", MaxFiles, err)
	}
	if _, _, err := BuildDir(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("built a missing directory")
	}
}

func TestContentType(t *testing.T) {
	for name, want := range map[string]string{
		"a.HTML": "text/html; charset=utf-8", "a.wasm": "application/wasm", "noext": "text/plain; charset=utf-8",
	} {
		if got := ContentType(name, []byte("hello")); got != want {
			t.Errorf("ContentType(%q) = %q, want %q", name, got, want)
		}
	}
	if got := ContentType("x.unknownext", []byte("<html><body>")); got != "text/html; charset=utf-8" {
		t.Errorf("sniffed %q", got)
	}
}
