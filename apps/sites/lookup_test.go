package sites

import "testing"

func TestLookup(t *testing.T) {
	m := testManifest()
	m.Handlers = append([]Handler{{Prefix: "/", Function: "fallback"}}, m.Handlers...)
	cases := []struct {
		in       string
		kind     MatchKind
		path     string
		function string
	}{
		{"/", File, "/index.html", ""},
		{"//", File, "/index.html", ""},
		{"/index.html", File, "/index.html", ""},
		{"/about/", File, "/about/index.html", ""},
		{"/./about//", File, "/about/index.html", ""},
		{"/about/index.html", File, "/about/index.html", ""},
		{"/about", Redirect, "/about", ""},
		{"/style.css", File, "/style.css", ""},
		{"/api/x/y", Dynamic, "/api/x/y", "render"},
		{"/api/", Dynamic, "/api/", "render"},
		{"/api", Dynamic, "/api", "fallback"}, // "/api/" matches under it only
		{"/count", Dynamic, "/count", "count_words"},
		{"/count/x", Dynamic, "/count/x", "fallback"}, // an exact prefix
		{"/missing", Dynamic, "/missing", "fallback"},
	}
	for _, c := range cases {
		got, err := m.Lookup(c.in)
		if err != nil {
			t.Fatalf("Lookup(%q): %v", c.in, err)
		}
		if got.Kind != c.kind || got.Path != c.path || got.Handler.Function != c.function {
			t.Errorf("Lookup(%q) = %+v, want kind %d path %q function %q", c.in, got, c.kind, c.path, c.function)
		}
		if got.Kind == File && got.Entry.Path != got.Path {
			t.Errorf("Lookup(%q): entry %q", c.in, got.Entry.Path)
		}
		if got.Kind == Redirect && got.Location != c.path+"/" {
			t.Errorf("Lookup(%q): location %q", c.in, got.Location)
		}
	}
	m.Handlers = nil
	for _, in := range []string{"/missing", "/api/x", "/about/x/"} {
		if got, err := m.Lookup(in); err != nil || got.Kind != NotFound {
			t.Errorf("Lookup(%q) = %+v, %v; want NotFound", in, got, err)
		}
	}
	if _, err := m.Lookup("/a/../index.html"); err == nil {
		t.Error("Lookup of a '..' path")
	}
}
