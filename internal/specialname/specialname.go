package specialname

import (
	"strings"

	"github.com/darkmatter/darkmatter/internal/streamerr"
)

// Error is why Check refused a name. Its text says which rule applies,
// in words fit for a user, and never holds the name.
type Error struct {
	why string
}

// The errors Check returns.
var (
	// ErrHiddenService refuses a .dark name: hidden services are not
	// available yet, and a .dark name never leaves the client.
	ErrHiddenService = &Error{"hidden services (.dark) are not available yet"}
	// ErrForeignName refuses a name of another naming system (.onion,
	// .alt), which no exit can resolve.
	ErrForeignName = &Error{"names under .onion and .alt belong to other networks and are never sent to an exit"}
	// ErrLocalName refuses a name of the user's own machine or network
	// (localhost, .local, home.arpa, .internal).
	ErrLocalName = &Error{"local names (localhost, .local, home.arpa, .internal) are never sent to an exit"}
)

// Error returns the rule's text, without the name.
func (e *Error) Error() string { return e.why }

// Unwrap returns streamerr Unreachable: a refused name is a host the
// network cannot reach.
func (e *Error) Unwrap() error { return unreachable }

var unreachable = streamerr.New(streamerr.Unreachable)

// lastLabel maps a name's last label, in lower case, to the error that
// refuses it. home.arpa, two labels, is checked apart.
var lastLabel = map[string]*Error{
	"dark":      ErrHiddenService,
	"onion":     ErrForeignName,
	"alt":       ErrForeignName,
	"localhost": ErrLocalName,
	"local":     ErrLocalName,
	"internal":  ErrLocalName,
}

// Check returns nil if host may be sent to an exit, and otherwise one of
// ErrHiddenService, ErrForeignName and ErrLocalName (see the package
// documentation). host is a domain name or an IP literal, without port
// or brackets; IP literals always pass. Letter case does not matter, and
// trailing dots are ignored ("x.DARK." is refused like "x.dark").
func Check(host string) error {
	// An IP literal passes by itself: its last label is digits, or hex
	// digits and colons, never one of the labels below.
	name, last := cutLast(strings.TrimRight(host, "."))
	if e := lastLabel[asciiLower(last)]; e != nil {
		return e
	}
	if asciiLower(last) == "arpa" {
		if _, second := cutLast(strings.TrimRight(name, ".")); asciiLower(second) == "home" {
			return ErrLocalName
		}
	}
	return nil
}

// cutLast splits name before its last label: "a.b.c" gives "a.b." and "c".
func cutLast(name string) (rest, last string) {
	i := strings.LastIndexByte(name, '.') + 1
	return name[:i], name[i:]
}

// asciiLower returns s with ASCII letters in lower case and every other
// byte unchanged. It allocates only when s holds an upper-case letter.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
