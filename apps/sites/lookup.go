package sites

import (
	"slices"
	"strings"
)

// MatchKind says what a request path names.
type MatchKind int

// Kinds of Match.
const (
	NotFound MatchKind = iota // nothing: answer 404
	File                      // a static file: Match.Entry
	Dynamic                   // a handler generates the page: Match.Handler
	Redirect                  // a directory without its '/': redirect to Match.Location
)

// Match is what Lookup finds for a request path.
type Match struct {
	Kind MatchKind
	// Path is the cleaned request path: the file's path for File, the
	// path the handler is called with for Dynamic.
	Path     string
	Entry    Entry   // for File
	Handler  Handler // for Dynamic
	Location string  // for Redirect: Path + "/"
}

// Lookup maps a request path (percent-decoded, without query) to what
// serves it (spec/sites.md §2.3), after CleanPath:
//  1. a path ending in '/' names its index file, "/dir/" → "/dir/index.html";
//     the file, if the manifest has it, is the match;
//  2. a path "/dir" with no such file but a file "/dir/index.html" is a
//     Redirect to "/dir/";
//  3. otherwise the handler with the longest matching prefix: "/" and a
//     prefix ending in '/' match every path starting with it, another
//     prefix only that exact path;
//  4. otherwise NotFound.
//
// It returns an error only for a request path CleanPath refuses.
func (m *Manifest) Lookup(p string) (Match, error) {
	c, err := CleanPath(p)
	if err != nil {
		return Match{}, err
	}
	file := c
	if strings.HasSuffix(c, "/") {
		file = c + IndexName
	}
	if e, ok := m.file(file); ok {
		return Match{Kind: File, Path: file, Entry: e}, nil
	}
	if !strings.HasSuffix(c, "/") {
		if _, ok := m.file(c + "/" + IndexName); ok {
			return Match{Kind: Redirect, Path: c, Location: c + "/"}, nil
		}
	}
	best := -1
	for i, h := range m.Handlers {
		if prefixMatches(h.Prefix, c) && (best < 0 || len(h.Prefix) > len(m.Handlers[best].Prefix)) {
			best = i
		}
	}
	if best >= 0 {
		return Match{Kind: Dynamic, Path: c, Handler: m.Handlers[best]}, nil
	}
	return Match{Kind: NotFound, Path: c}, nil
}

func prefixMatches(prefix, p string) bool {
	if strings.HasSuffix(prefix, "/") {
		return strings.HasPrefix(p, prefix)
	}
	return p == prefix
}

// file finds the entry of path p by binary search; Files is sorted.
func (m *Manifest) file(p string) (Entry, bool) {
	i, ok := slices.BinarySearchFunc(m.Files, p, func(e Entry, p string) int { return strings.Compare(e.Path, p) })
	if !ok {
		return Entry{}, false
	}
	return m.Files[i], true
}
