package sites

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// IndexName is the file a directory path ("/" or "/dir/") serves.
const IndexName = "index.html"

// CheckPath checks that p is a canonical file path of a manifest
// (spec/sites.md §2.1): 2..MaxPathLen bytes of valid UTF-8 starting with
// '/', segments separated by single '/', none empty, "." or "..", no
// trailing '/', and no byte below 0x20, 0x7F or '\'.
func CheckPath(p string) error {
	if len(p) < 2 || len(p) > MaxPathLen {
		return fmt.Errorf("path of %d bytes, want 2..%d", len(p), MaxPathLen)
	}
	if p[0] != '/' {
		return errors.New("path does not start with '/'")
	}
	if err := checkBytes(p); err != nil {
		return err
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		switch seg {
		case "":
			return errors.New("path has an empty segment ('//' or a trailing '/')")
		case ".", "..":
			return fmt.Errorf("path has a %q segment", seg)
		}
	}
	return nil
}

// checkBytes refuses invalid UTF-8, control bytes and '\'.
func checkBytes(p string) error {
	if !utf8.ValidString(p) {
		return errors.New("path is not valid UTF-8")
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return fmt.Errorf("path byte %d is %#02x (control byte or '\\')", i, c)
		}
	}
	return nil
}

// checkPrefix checks a handler prefix: "/", a canonical path (it matches
// that path only), or a canonical path followed by '/' (it matches every
// path under it).
func checkPrefix(p string) error {
	if p == "/" {
		return nil
	}
	if len(p) > MaxPathLen {
		return fmt.Errorf("prefix of %d bytes, want 1..%d", len(p), MaxPathLen)
	}
	return CheckPath(strings.TrimSuffix(p, "/"))
}

// CleanPath turns a request path (already percent-decoded) into the form
// Lookup matches: it must start with '/'; "." segments and empty segments
// ("//") are dropped; a ".." segment is refused, never resolved; a trailing
// '/' is kept (it names a directory). The result is at most MaxPathLen
// bytes and is its own CleanPath.
func CleanPath(p string) (string, error) {
	if len(p) == 0 || p[0] != '/' {
		return "", errors.New("sites: request path does not start with '/'")
	}
	if len(p) > maxRequestPath {
		return "", fmt.Errorf("sites: request path of %d bytes exceeds %d", len(p), maxRequestPath)
	}
	if err := checkBytes(p); err != nil {
		return "", fmt.Errorf("sites: request %w", err)
	}
	var b strings.Builder
	b.Grow(len(p))
	dir := false
	for seg := range strings.SplitSeq(p[1:], "/") {
		dir = false
		switch seg {
		case "..":
			return "", errors.New(`sites: request path has a ".." segment`)
		case "", ".":
			dir = true
			continue
		}
		b.WriteByte('/')
		b.WriteString(seg)
	}
	if dir || b.Len() == 0 {
		b.WriteByte('/')
	}
	out := b.String()
	if len(out) > MaxPathLen {
		return "", fmt.Errorf("sites: request path of %d bytes after cleaning exceeds %d", len(out), MaxPathLen)
	}
	return out, nil
}

// checkContentType checks a content type: 1..MaxContentTypeLen bytes of
// printable ASCII (0x20..0x7E), so it is safe as an HTTP header value.
func checkContentType(ct string) error {
	if len(ct) == 0 || len(ct) > MaxContentTypeLen {
		return fmt.Errorf("content type of %d bytes, want 1..%d", len(ct), MaxContentTypeLen)
	}
	for i := 0; i < len(ct); i++ {
		if c := ct[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("content type byte %d is %#02x, not printable ASCII", i, c)
		}
	}
	return nil
}
