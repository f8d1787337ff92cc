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
	// version and key are valid) as a name to send to an exit: the node
	// reaches it as a hidden service, and a .dark address never leaves
	// the client. The proxies pass such a target to their Dialer.
	ErrHiddenService = &Error{why: "hidden service address", reason: unreachable}
	// ErrName marks a host under .dark whose label before .dark does not
	// have the 56 bytes of an address and whose name part is a valid name
	// (spec/names.md §1): the node resolves it through the network, so it
	// is never sent to an exit either. The proxies pass such a target to
	// their Dialer; a Dialer that returns it is answered as unreachable.
	ErrName = &Error{why: "a network name, resolved by the node", reason: unreachable}
	// ErrNameNotFound is wrapped by the node around its error for a name
	// that no one registered (or whose registration expired); the proxies
	// answer it like a hidden service whose descriptor is not found.
	// Check never returns it.
	ErrNameNotFound = &Error{why: "name not registered", reason: unreachable}
	// ErrForeignName refuses a name of another naming system (.onion,
	// .alt), which no exit can resolve.
	ErrForeignName = &Error{why: "names under .onion and .alt belong to other networks and are never sent to an exit", reason: unreachable}
	// ErrLocalName refuses a name of the user's own machine or network
	// (localhost, .local, home.arpa, .internal).
	ErrLocalName = &Error{why: "local names (localhost, .local, home.arpa, .internal) are never sent to an exit", reason: unreachable}
)

// ErrBadName refuses a host under .dark that is neither an address (its
// label before .dark does not have 56 bytes) nor a valid name: a
// character other than a letter, a digit or '-', '-' at either end of a
// label, "--" in a label's third and fourth bytes, an empty label, a label
// over 63 bytes or of 56 bytes, more than 4 labels or 253 bytes, a last
// label "dark", or nothing before .dark (spec/names.md §1). [IsMistyped]
// reports true for it; it has no crypto/keys cause.
var ErrBadName = &Error{why: "mistyped .dark name: a name has 1 to 4 labels of 1 to 63 letters, digits or inner '-', none of 56 (the length of an address)", reason: badAddress}

// The errors Check returns for a mistyped .dark address (a label of 56
// bytes before .dark), one for each check of keys.ParseAddress
// (spec/keys.md §3). Each matches its crypto/keys error with errors.Is,
// and [IsMistyped] reports true for all. ErrAddressLength is no longer
// returned by Check, since a label of another length is a name, but
// Service returns it for a host not under .dark.
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
// cannot reach, BadAddress for a mistyped .dark address or name) and, for
// a mistyped address, the crypto/keys error saying which check failed.
func (e *Error) Unwrap() []error {
	if e.cause == nil {
		return []error{e.reason}
	}
	return []error{e.reason, e.cause}
}

// Mistyped reports whether e refuses a mistyped .dark address or name.
func (e *Error) Mistyped() bool { return e.reason == badAddress }

// IsMistyped reports whether err is, or wraps, an *Error that refuses a
// mistyped .dark address or name.
func IsMistyped(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Mistyped()
}

var (
	unreachable = streamerr.New(streamerr.Unreachable)
	badAddress  = streamerr.New(streamerr.BadAddress)
)

// lastLabel maps a name's last label, in lower case, to the error that
// refuses it. .dark and home.arpa (two labels) are checked apart.
var lastLabel = map[string]*Error{
	"onion":     ErrForeignName,
	"alt":       ErrForeignName,
	"localhost": ErrLocalName,
	"local":     ErrLocalName,
	"internal":  ErrLocalName,
}

// Check returns nil if host may be sent to an exit, and otherwise one of
// ErrHiddenService, ErrName, ErrBadName, the ErrAddress errors,
// ErrForeignName and ErrLocalName (see the package documentation). host
// is a domain name or an IP literal, without port or brackets; IP
// literals always pass. Letter case does not matter, and trailing dots
// are ignored ("x.DARK." is classified like "x.dark").
func Check(host string) error {
	// An IP literal passes by itself: its last label is digits, or hex
	// digits and colons, never one of the labels below.
	rest, last := cutLast(strings.TrimRight(host, "."))
	if isDark(last) {
		return darkHost(strings.TrimSuffix(rest, "."))
	}
	if e := lastLabel[asciiLower(last)]; e != nil {
		return e
	}
	if asciiLower(last) == "arpa" {
		if _, second := cutLast(strings.TrimRight(rest, ".")); asciiLower(second) == "home" {
			return ErrLocalName
		}
	}
	return nil
}

// darkHost classifies the part of a .dark host before ".dark" by its last
// label (spec/names.md §1): a label of keys.AddressLabelLength bytes is an
// address, ErrHiddenService when valid, else the error of the check it
// fails; labels before it are ignored, as Tor ignores those of an onion
// address, so that www.<addr>.dark names the service <addr>.dark. Any
// other length makes the whole part a name: ErrName when it is valid,
// else ErrBadName.
func darkHost(part string) *Error {
	if _, label := cutLast(part); len(label) == keys.AddressLabelLength {
		return darkAddress(label)
	}
	if validName(part) {
		return ErrName
	}
	return ErrBadName
}

// darkAddress checks a label of 56 bytes by keys.ParseAddress.
func darkAddress(label string) *Error {
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

// Name syntax (spec/names.md §1), the same as apps/names.CanonicalName's.
const (
	maxNameLen  = 253
	maxLabelLen = 63
	maxLabels   = 4
)

// validName reports whether name (without ".dark", any ASCII letter case)
// is a valid name.
func validName(name string) bool {
	if len(name) == 0 || len(name) > maxNameLen {
		return false
	}
	n := 0
	for label := range strings.SplitSeq(name, ".") {
		if n++; n > maxLabels || !isNameLabel(label) {
			return false
		}
	}
	_, last := cutLast(name)
	return !isDark(last)
}

// isNameLabel reports whether l is a label of a name: 1..63 bytes but not
// 56, of ASCII letters, digits and '-', with no '-' at either end and no
// "--" in its third and fourth bytes (reserved, as IDN's "xn--").
func isNameLabel(l string) bool {
	if len(l) == 0 || len(l) > maxLabelLen || len(l) == keys.AddressLabelLength ||
		l[0] == '-' || l[len(l)-1] == '-' || len(l) >= 4 && l[2:4] == "--" {
		return false
	}
	for i := 0; i < len(l); i++ {
		switch c := l[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-':
		default:
			return false
		}
	}
	return true
}

// isDark reports whether label is "dark" in any ASCII letter case.
func isDark(label string) bool { return len(label) == 4 && asciiLower(label) == "dark" }

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
// letter case, with trailing dots. For a host not under .dark it returns
// ErrAddressLength.
func Service(host string) (keys.ServicePublicKey, error) {
	rest, last := cutLast(strings.TrimRight(host, "."))
	if !isDark(last) {
		return keys.ServicePublicKey{}, ErrAddressLength
	}
	_, label := cutLast(strings.TrimSuffix(rest, "."))
	return keys.ParseAddress(label)
}

// Name returns the name of a host that Check classifies as ErrName, in
// its canonical form (spec/names.md §1: ASCII letters lowered, without
// ".dark" and trailing dots): "blog.alice" for "Blog.Alice.DARK.". For
// any other host it returns Check's error, or ErrBadName for a host not
// under .dark. The node resolves the name; this package never does.
func Name(host string) (string, error) {
	switch err := Check(host); err {
	case ErrName:
	case nil:
		return "", ErrBadName
	default:
		return "", err
	}
	rest, _ := cutLast(strings.TrimRight(host, "."))
	return asciiLower(strings.TrimSuffix(rest, ".")), nil
}
