package sites

import (
	"strings"
	"testing"
)

func TestCheckPath(t *testing.T) {
	for _, p := range []string{"/a", "/index.html", "/a/b/c.txt", "/...", "/é/ü.html", "/a b", "/a?b#c%20", "/" + strings.Repeat("x", MaxPathLen-1)} {
		if err := CheckPath(p); err != nil {
			t.Errorf("CheckPath(%q): %v", p, err)
		}
	}
	for _, p := range []string{"", "/", "a", "a/b", "//a", "/a//b", "/a/", "/./a", "/a/.", "/a/../b", "/..", "/a\\b",
		"/a\x00", "/a\nb", "/a\x7f", "/\xff", "/" + strings.Repeat("x", MaxPathLen)} {
		if err := CheckPath(p); err == nil {
			t.Errorf("CheckPath(%q) accepted", p)
		}
	}
}

func TestCleanPath(t *testing.T) {
	for in, want := range map[string]string{
		"/": "/", "//": "/", "/.": "/", "/./": "/", "/a": "/a", "/a/": "/a/", "//a//b": "/a/b",
		"/a/./b": "/a/b", "/a/.": "/a/", "/a//": "/a/", "/a/b/": "/a/b/", "/...": "/...",
	} {
		got, err := CleanPath(in)
		if err != nil || got != want {
			t.Errorf("CleanPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "a", "/..", "/a/../b", "/a/..", "/a\\b", "/\x00", "/\xff",
		"/" + strings.Repeat("x", MaxPathLen), "/" + strings.Repeat("./", maxRequestPath)} {
		if got, err := CleanPath(in); err == nil {
			t.Errorf("CleanPath(%q) = %q, want an error", in, got)
		}
	}
	// Many dot segments clean down to a path within the limit.
	if got, err := CleanPath(strings.Repeat("/.", 2000) + "/a"); err != nil || got != "/a" {
		t.Errorf("dot segments: %q, %v", got, err)
	}
}

func TestCheckPrefix(t *testing.T) {
	for _, p := range []string{"/", "/api/", "/api", "/a/b/"} {
		if err := checkPrefix(p); err != nil {
			t.Errorf("checkPrefix(%q): %v", p, err)
		}
	}
	for _, p := range []string{"", "api/", "//", "/a//", "/../", "/" + strings.Repeat("x", MaxPathLen) + "/"} {
		if err := checkPrefix(p); err == nil {
			t.Errorf("checkPrefix(%q) accepted", p)
		}
	}
}
