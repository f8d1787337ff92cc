package sites

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path"
	"slices"
	"strings"
)

// builtinTypes fixes the content types of common web files, so a build
// does not depend on the publishing machine's MIME tables.
var builtinTypes = map[string]string{
	".html":  "text/html; charset=utf-8",
	".htm":   "text/html; charset=utf-8",
	".css":   "text/css; charset=utf-8",
	".js":    "text/javascript; charset=utf-8",
	".mjs":   "text/javascript; charset=utf-8",
	".json":  "application/json",
	".txt":   "text/plain; charset=utf-8",
	".md":    "text/markdown; charset=utf-8",
	".xml":   "application/xml",
	".svg":   "image/svg+xml",
	".png":   "image/png",
	".jpg":   "image/jpeg",
	".jpeg":  "image/jpeg",
	".gif":   "image/gif",
	".webp":  "image/webp",
	".avif":  "image/avif",
	".ico":   "image/x-icon",
	".wasm":  "application/wasm",
	".pdf":   "application/pdf",
	".woff":  "font/woff",
	".woff2": "font/woff2",
}

// ContentType returns the content type of a file named name: the built-in
// table by extension, then mime.TypeByExtension, then a sniff of the
// content (http.DetectContentType). The result always passes the
// manifest's content type rule.
func ContentType(name string, content []byte) string {
	ext := strings.ToLower(path.Ext(name))
	if t, ok := builtinTypes[ext]; ok {
		return t
	}
	if ext != "" {
		if t := mime.TypeByExtension(ext); checkContentType(t) == nil {
			return t
		}
	}
	return http.DetectContentType(content)
}

// BuildDir is Build over the directory dir, opened with os.OpenRoot so that
// no symbolic link can reach outside it.
func BuildDir(dir string) (map[string][]byte, *Manifest, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("sites: %w", err)
	}
	defer root.Close()
	return Build(root.FS())
}

// Build walks fsys and returns the content of every file by manifest path
// and an unsigned manifest listing them (Seq, Created and Handlers are the
// caller's to set before Sign). It skips names starting with '.' (files and
// whole directories), follows a symbolic link only to a regular file that
// fsys resolves (os.Root refuses links that escape it), and refuses links
// to directories, other irregular files, names that are not valid paths,
// and sites over MaxFiles, MaxFileSize or MaxSiteSize. It reads at most
// MaxSiteSize bytes of content.
func Build(fsys fs.FS) (map[string][]byte, *Manifest, error) {
	files := make(map[string][]byte)
	m := &Manifest{}
	var total uint64
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name != "." && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		p := "/" + name
		if err := CheckPath(p); err != nil {
			return fmt.Errorf("%q: %w", name, err)
		}
		info, err := fs.Stat(fsys, name) // follows a link, inside fsys only
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return fmt.Errorf("%q: not a regular file (%v)", name, info.Mode().Type())
		}
		if len(m.Files) == MaxFiles {
			return fmt.Errorf("more than %d files", MaxFiles)
		}
		if info.Size() > MaxFileSize {
			return fmt.Errorf("%q: %d bytes, over the %d-byte file limit", name, info.Size(), MaxFileSize)
		}
		if total+uint64(info.Size()) > MaxSiteSize {
			return fmt.Errorf("site over %d bytes", MaxSiteSize)
		}
		content, err := readFile(fsys, name)
		if err != nil {
			return err
		}
		if total += uint64(len(content)); total > MaxSiteSize {
			return fmt.Errorf("site over %d bytes", MaxSiteSize)
		}
		files[p] = content
		m.Files = append(m.Files, Entry{Path: p, Hash: sha256.Sum256(content), Size: uint64(len(content)), ContentType: ContentType(name, content)})
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("sites: build: %w", err)
	}
	if len(m.Files) == 0 {
		return nil, nil, errors.New("sites: build: no files")
	}
	// WalkDir visits in lexical order per directory, which is not the
	// bytewise order of full paths ("/a/b" vs "/a-b").
	slices.SortFunc(m.Files, func(a, b Entry) int { return strings.Compare(a.Path, b.Path) })
	return files, m, nil
}

// readFile reads name, refusing one that grew past MaxFileSize since Stat.
func readFile(fsys fs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxFileSize {
		return nil, fmt.Errorf("%q: over the %d-byte file limit", name, MaxFileSize)
	}
	return b, nil
}
