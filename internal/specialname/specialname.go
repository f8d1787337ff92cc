package specialname

import (
	"errors"
	"strings"

	"github.com/darkmatter/darkmatter/crypto/keys"

	"github.com/darkmatter/darkmatter/internal/streamerr"
)

// Error is why Check refused a name. Its text says which rule applies,
// in words fit for a user, and never holds the name.
type Error struct {
	why    string
	reason error // a streamerr error
	cause  error // for a mistyped .dark address, the crypto/keys error
}

// The errors Check returns.
var (
	// ErrHiddenService refuses a well-formed .dark address (its checksum,
	// version and key are valid): this client cannot reach hidden services
	// yet, and a .dark name never leaves the client.
	ErrHiddenService = &Error{why: "hidden service address", reason: unreachable}
	// ErrForeignName refuses a name of another naming system (.onion,
	// .alt), which no exit can resolve.
	ErrForeignName = &Error{why: "names under .onion and .alt belong to other networks and are never sent to an exit", reason: unreachable}
	// ErrLocalName refuses a name of the user's own machine or network
	// (localhost, .local, home.arpa, .internal).
	ErrLocalName = &Error{why: "local names (localhost, .local, home.arpa, .internal) are never sent to an exit", reason: unreachable}
)

// The errors Check returns for a mistyped .dark address, one for each
// check of keys.ParseAddress (spec/keys.md §3). Each matches its
// crypto/keys error with errors.Is, and [IsMistyped] reports true for all.
var (
	ErrAddressLength   = mistyped("wrong length (an address has 56 characters before .dark)", keys.ErrAddressLength)
	ErrAddressEncoding = mistyped("a character is not base32 (only letters and the digits 2 to 7)", keys.ErrAddressEncoding)
	ErrAddressVersion  = mistyped("unknown address version", keys.ErrAddressVersion)
	ErrAddressChecksum = mistyped("bad checksum (a character is wrong)", keys.ErrAddressChecksum)
	ErrAddressKey      = mistyped("it does not hold a valid service key", keys.ErrAddressKey)
)

func mistyped(why string, cause error) *Error {
	return &Error{why: "mistyped .dark address: " + why, reason: badAddress, cause: cause}
}

// mistypedErrors maps each crypto/keys parse error to Check's error.
var mistypedErrors = []*Error{ErrAddressLength, ErrAddressEncoding, ErrAddressVersion, ErrAddressChecksum, ErrAddressKey}

// Error returns the rule's text, without the name.
func (e *Error) Error() string { return e.why }

// Unwrap returns the streamerr error (Unreachable for a name the network
// cannot reach, BadAddress for a mistyped .dark address) and, for a
// mistyped address, the crypto/keys error saying which check failed.
func (e *Error) Unwrap() []error {
	if e.cause == nil {
		return []error{e.reason}
	}
	return []error{e.reason, e.cause}
}

// Mistyped reports whether e refuses a mistyped .dark address.
func (e *Error) Mistyped() bool { return e.cause != nil }

// IsMistyped reports whether err is, or wraps, an *Error that refuses a
// mistyped .dark address.
func IsMistyped(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Mistyped()
}

var (
	unreachable = streamerr.New(streamerr.Unreachable)
	badAddress  = streamerr.New(streamerr.BadAddress)
)

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
		if e == ErrHiddenService {
			return darkAddress(name)
		}
		return e
	}
	if asciiLower(last) == "arpa" {
		if _, second := cutLast(strings.TrimRight(name, ".")); asciiLower(second) == "home" {
			return ErrLocalName
		}
	}
	return nil
}

// darkAddress checks the label right before ".dark" (name is the host
// without its trailing dots and last label): ErrHiddenService when it is a
// valid address, else the error of the check it fails. Labels before it
// are ignored, as Tor ignores those of an onion address, so that
// www.<addr>.dark names the service <addr>.dark.
func darkAddress(name string) *Error {
	_, label := cutLast(strings.TrimSuffix(name, "."))
	_, err := keys.ParseAddress(label)
	if err == nil {
		return ErrHiddenService
	}
	for _, e := range mistypedErrors {
		if errors.Is(err, e.cause) {
			return e
		}
	}
	return ErrAddressLength // not reached: ParseAddress returns one of the above
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

// Service returns the service key of a host under .dark that Check
// accepts as a hidden service: "<addr>.dark", any subdomain of it, in any
// letter case, with trailing dots.
func Service(host string) (keys.ServicePublicKey, error) {
	name, last := cutLast(strings.TrimRight(host, "."))
	if asciiLower(last) != "dark" {
		return keys.ServicePublicKey{}, ErrAddressLength
	}
	_, label := cutLast(strings.TrimSuffix(name, "."))
	return keys.ParseAddress(label)
}
