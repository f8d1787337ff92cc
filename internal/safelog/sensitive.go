package safelog

import (
	"fmt"
	"log/slog"
	"sync/atomic"
)

// Scrubbed is what a redacted [Sensitive] prints.
const Scrubbed = "[scrubbed]"

// unsafeLogging is the process-wide switch behind SetUnsafeLogging.
var unsafeLogging atomic.Bool

// SetUnsafeLogging turns redaction off (on == true) or back on for the whole
// process. It is off by default; only an operator's explicit choice (a
// command-line flag in cmd/) should turn it on.
func SetUnsafeLogging(on bool) { unsafeLogging.Store(on) }

// UnsafeLogging reports whether SetUnsafeLogging(true) is in force.
func UnsafeLogging() bool { return unsafeLogging.Load() }

// Sensitive wraps a value (an address, node ID, circuit ID or key) that must
// not appear in logs by default. Create it with [S]. The zero value wraps nil.
//
// The value is held inside a closure on purpose. When fmt cannot call Format
// (the Sensitive sits in an unexported struct field, or the verb is invalid
// for its container) it prints the struct by reflection, and reflection
// reaches anything stored in a field, even behind a pointer, but not the
// variables a func captured: a func prints as its address. The closure sits
// behind a pointer so that Sensitive stays comparable (by identity), and
// structs that hold one can still be compared and used as map keys.
type Sensitive struct {
	p *box
}

type box struct {
	get func() any
}

// S wraps v so that it is printed as [Scrubbed] unless unsafe logging is on.
func S(v any) Sensitive {
	return Sensitive{p: &box{get: func() any { return v }}}
}

func (s Sensitive) value() any {
	if s.p == nil {
		return nil
	}
	return s.p.get()
}

// String returns [Scrubbed], or fmt.Sprint of the wrapped value when unsafe
// logging is on.
func (s Sensitive) String() string {
	if !UnsafeLogging() {
		return Scrubbed
	}
	return fmt.Sprint(s.value())
}

// Format implements fmt.Formatter so that every verb and flag, %#v included,
// prints [Scrubbed]. With unsafe logging on, the wrapped value is formatted
// with the same verb, flags, width and precision.
func (s Sensitive) Format(f fmt.State, verb rune) {
	if !UnsafeLogging() {
		_, _ = f.Write([]byte(Scrubbed))
		return
	}
	_, _ = fmt.Fprintf(f, fmt.FormatString(f, verb), s.value())
}

// GoString returns the same as String, for callers that use the GoStringer
// interface directly instead of through fmt.
func (s Sensitive) GoString() string { return s.String() }

// MarshalText implements encoding.TextMarshaler with the same redaction, so
// encoding/json and log/slog's handlers print it like fmt does.
func (s Sensitive) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue implements slog.LogValuer with the same redaction.
func (s Sensitive) LogValue() slog.Value { return slog.StringValue(s.String()) }
