package call

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/darkmatter/darkmatter/apps/compute/manifest"
)

// Status is a RESULT's outcome.
type Status uint8

// Statuses (spec/compute.md §4.3).
const (
	OK             Status = 0  // the output follows
	Refused        Status = 1  // the executor's policy refuses the module or the call
	NoModule       Status = 2  // the module or its manifest could not be found
	BadModule      Status = 3  // hash, signature or WebAssembly wrong, or no such function
	BadInput       Status = 4  // the input could not be had, or is too large
	Trap           Status = 5  // the module trapped or exited non-zero
	Timeout        Status = 6  // the wall-time limit stopped it
	Memory         Status = 7  // the memory limit stopped it
	OutputTooLarge Status = 8  // the output exceeded its limit
	Limit          Status = 9  // a depth, fan-out or tree budget limit stopped it
	Busy           Status = 10 // the executor runs all the calls it can; try another
	Malformed      Status = 11 // the CALL broke the protocol
	maxStatus             = Malformed
)

var statusNames = [...]string{
	OK: "ok", Refused: "refused", NoModule: "no module", BadModule: "bad module",
	BadInput: "bad input", Trap: "trap", Timeout: "timeout", Memory: "out of memory",
	OutputTooLarge: "output too large", Limit: "call tree limit", Busy: "busy", Malformed: "malformed call",
}

func (s Status) String() string {
	if s <= maxStatus {
		return statusNames[s]
	}
	return fmt.Sprintf("status %d", uint8(s))
}

// Result limits.
const (
	// MaxReason bounds a failure's reason, in bytes of UTF-8.
	MaxReason = 512
	// MaxOutput is the largest output a RESULT carries: the largest a
	// manifest may ask for.
	MaxOutput = manifest.MaxOutputLimit
	// MaxResultSize bounds an encoded RESULT.
	MaxResultSize = resultFixed + MaxOutput
	resultFixed   = 1 + 2 + 4
)

// Result is an executor's RESULT.
type Result struct {
	Status Status
	// Used is how many calls the call's subtree ran, itself included; the
	// parent returns the rest of the budget it lent.
	Used   uint16
	Output []byte // Status OK
	Reason string // otherwise: why, for a person
}

// Marshal encodes r; a reason is cut to MaxReason bytes (at a rune
// boundary) and made valid UTF-8.
func (r *Result) Marshal() ([]byte, error) {
	payload := r.Output
	if r.Status != OK {
		payload = []byte(CutReason(r.Reason))
	} else if len(payload) > MaxOutput {
		return nil, malformed("output of %d bytes, at most %d", len(payload), MaxOutput)
	}
	if r.Status > maxStatus {
		return nil, malformed("status %d", r.Status)
	}
	b := make([]byte, 0, resultFixed+len(payload))
	b = append(b, byte(r.Status))
	b = binary.BigEndian.AppendUint16(b, r.Used)
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	return append(b, payload...), nil
}

// CutReason returns s as valid UTF-8 of at most MaxReason bytes.
func CutReason(s string) string {
	s = string([]rune(s)) // invalid bytes become U+FFFD
	for len(s) > MaxReason {
		_, n := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-n]
	}
	return s
}

// ParseResult decodes a RESULT body. A status this version does not know
// is kept: its reason still says what happened.
func ParseResult(b []byte) (*Result, error) {
	if len(b) < resultFixed {
		return nil, malformed("RESULT of %d bytes", len(b))
	}
	r := &Result{Status: Status(b[0]), Used: binary.BigEndian.Uint16(b[1:])}
	n := binary.BigEndian.Uint32(b[3:])
	if uint64(n) != uint64(len(b)-resultFixed) {
		return nil, malformed("RESULT payload of %d bytes, %d present", n, len(b)-resultFixed)
	}
	payload := b[resultFixed:]
	if r.Status == OK {
		if len(payload) > MaxOutput {
			return nil, malformed("output of %d bytes", len(payload))
		}
		r.Output = payload
		return r, nil
	}
	if len(payload) > MaxReason || !utf8.Valid(payload) {
		return nil, malformed("reason of %d bytes, or not UTF-8", len(payload))
	}
	r.Reason = string(payload)
	return r, nil
}

// Err returns nil for OK, else an *Error with the status and reason.
func (r *Result) Err() error {
	if r.Status == OK {
		return nil
	}
	return &Error{Status: r.Status, Reason: r.Reason}
}

// Error is a call that an executor ran or refused without an output.
type Error struct {
	Status Status
	Reason string
}

func (e *Error) Error() string {
	if e.Reason == "" {
		return "executor: " + e.Status.String()
	}
	return "executor: " + e.Status.String() + ": " + e.Reason
}

// Retryable reports whether another executor may well succeed where this
// one did not: it was busy, or could not get the module.
func (e *Error) Retryable() bool { return e.Status == Busy || e.Status == NoModule }

// StatusOf returns the status of an *Error in err's chain, and false for
// any other error (a broken stream, a cancelled context).
func StatusOf(err error) (Status, bool) {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Status, true
	}
	return 0, false
}
