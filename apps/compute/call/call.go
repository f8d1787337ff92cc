package call

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/darkmatter/darkmatter/apps/compute/manifest"
)

// Layout limits (spec/compute.md §4).
const (
	// Version is the only CALL version.
	Version = 1
	// MaxInput is the largest literal input, and the largest input a call
	// may be given by any source.
	MaxInput = 1 << 20
	// MaxNesting bounds how deep a CALL's input may be the result of
	// another CALL (whose input may again be a call).
	MaxNesting = 4
	// MaxDepth is the deepest call tree a CALL may allow below itself.
	MaxDepth = manifest.MaxDepth
	// MaxTimeout is the longest a requester may wait for a call.
	MaxTimeout = time.Hour
	// MaxCallSize bounds an encoded CALL: a literal of MaxInput, and
	// MaxNesting levels of headers and manifests.
	MaxCallSize = MaxInput + (MaxNesting+1)*(callFixed+manifest.MaxFunctionLen+manifest.MaxManifestSize+5)

	// callFixed: version, module hash, function length, flags, depth,
	// budget, timeout, manifest length, input kind.
	callFixed = 1 + 32 + 1 + 1 + 1 + 2 + 4 + 2 + 1
)

// Flags of a CALL.
const (
	// FlagOffer says the requester holds the module bytes and sends them
	// when asked (NEED).
	FlagOffer byte = 1 << 0
	flagsAll       = FlagOffer
)

// InputKind says where a call's input comes from.
type InputKind uint8

// Input kinds.
const (
	// InputLiteral is bytes carried in the CALL.
	InputLiteral InputKind = 0
	// InputBlob is a content-addressed blob of the DHT, named by its
	// SHA-256; the executor fetches and verifies it.
	InputBlob InputKind = 1
	// InputCall is the output of another call, which the executor runs
	// first.
	InputCall InputKind = 2
)

// Input is a call's input.
type Input struct {
	Kind    InputKind
	Literal []byte   // InputLiteral
	Blob    [32]byte // InputBlob
	Call    *Call    // InputCall
}

// Literal returns a literal input.
func Literal(b []byte) Input { return Input{Kind: InputLiteral, Literal: b} }

// Call is a CALL: run Function of the module whose SHA-256 is Module on
// Input.
type Call struct {
	Module   [32]byte
	Function string // 1..64 bytes of [A-Za-z0-9_]
	Flags    byte
	// Depth is how many levels of sub-calls may still run below this call
	// (0..MaxDepth): 0 means none.
	Depth uint8
	// Budget is the most calls the subtree of this call may run, itself
	// included (1..65535).
	Budget uint16
	// Timeout is how long the requester waits, 1 ms..1 h, whole
	// milliseconds on the wire.
	Timeout time.Duration
	// Manifest, when set, is the module's signed manifest (spec/compute.md
	// §1), so the executor need not look it up.
	Manifest []byte
	Input    Input
}

// ErrMalformed is wrapped by every layout error of this package.
var ErrMalformed = errors.New("call: malformed")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Marshal encodes c, or says which field is out of range.
func (c *Call) Marshal() ([]byte, error) {
	return c.appendTo(nil, 0)
}

func (c *Call) appendTo(b []byte, level int) ([]byte, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	b = append(b, Version)
	b = append(b, c.Module[:]...)
	b = append(b, byte(len(c.Function)))
	b = append(b, c.Function...)
	b = append(b, c.Flags, c.Depth)
	b = binary.BigEndian.AppendUint16(b, c.Budget)
	b = binary.BigEndian.AppendUint32(b, uint32(c.Timeout/time.Millisecond))
	b = binary.BigEndian.AppendUint16(b, uint16(len(c.Manifest)))
	b = append(b, c.Manifest...)
	b = append(b, byte(c.Input.Kind))
	switch c.Input.Kind {
	case InputLiteral:
		b = binary.BigEndian.AppendUint32(b, uint32(len(c.Input.Literal)))
		b = append(b, c.Input.Literal...)
	case InputBlob:
		b = append(b, c.Input.Blob[:]...)
	case InputCall:
		if level+1 > MaxNesting {
			return nil, malformed("inputs nested more than %d calls deep", MaxNesting)
		}
		at := len(b)
		b = append(b, 0, 0, 0, 0)
		var err error
		if b, err = c.Input.Call.appendTo(b, level+1); err != nil {
			return nil, err
		}
		binary.BigEndian.PutUint32(b[at:], uint32(len(b)-at-4))
	}
	return b, nil
}

// check checks every field but the nested call's.
func (c *Call) check() error {
	if err := manifest.CheckFunctionName(c.Function); err != nil {
		return malformed("function %s", err)
	}
	switch {
	case c.Flags&^flagsAll != 0:
		return malformed("unknown flags %#x", c.Flags)
	case c.Depth > MaxDepth:
		return malformed("depth %d, at most %d", c.Depth, MaxDepth)
	case c.Budget == 0:
		return malformed("budget 0")
	case c.Timeout < time.Millisecond || c.Timeout > MaxTimeout || c.Timeout%time.Millisecond != 0:
		return malformed("timeout %v, want whole milliseconds in 1ms..1h", c.Timeout)
	case len(c.Manifest) != 0 && (len(c.Manifest) < manifest.MinManifestSize || len(c.Manifest) > manifest.MaxManifestSize):
		return malformed("manifest of %d bytes", len(c.Manifest))
	}
	switch c.Input.Kind {
	case InputLiteral:
		if len(c.Input.Literal) > MaxInput {
			return malformed("literal input of %d bytes, at most %d", len(c.Input.Literal), MaxInput)
		}
	case InputBlob:
	case InputCall:
		if c.Input.Call == nil {
			return malformed("call input without a call")
		}
	default:
		return malformed("input kind %d", c.Input.Kind)
	}
	return nil
}

// Parse decodes a CALL body. Only the layout is checked.
func Parse(b []byte) (*Call, error) {
	if len(b) > MaxCallSize {
		return nil, malformed("CALL of %d bytes, at most %d", len(b), MaxCallSize)
	}
	c, rest, err := parse(b, 0)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, malformed("%d trailing bytes", len(rest))
	}
	return c, nil
}

func parse(b []byte, level int) (*Call, []byte, error) {
	r := reader{b: b}
	if v := r.byte(); r.err == nil && v != Version {
		return nil, nil, malformed("version %d", v)
	}
	c := &Call{}
	copy(c.Module[:], r.bytes(32))
	c.Function = string(r.bytes(int(r.byte())))
	c.Flags, c.Depth = r.byte(), r.byte()
	c.Budget = r.uint16()
	c.Timeout = time.Duration(r.uint32()) * time.Millisecond
	if n := int(r.uint16()); n > 0 {
		c.Manifest = r.bytes(n)
	}
	c.Input.Kind = InputKind(r.byte())
	if r.err != nil {
		return nil, nil, r.err
	}
	switch c.Input.Kind {
	case InputLiteral:
		n := r.uint32()
		if r.err == nil && n > MaxInput {
			return nil, nil, malformed("literal input of %d bytes, at most %d", n, MaxInput)
		}
		c.Input.Literal = r.bytes(int(n))
	case InputBlob:
		copy(c.Input.Blob[:], r.bytes(32))
	case InputCall:
		if level+1 > MaxNesting {
			return nil, nil, malformed("inputs nested more than %d calls deep", MaxNesting)
		}
		inner := r.bytes(int(r.uint32()))
		if r.err != nil {
			return nil, nil, r.err
		}
		ic, rest, err := parse(inner, level+1)
		if err != nil {
			return nil, nil, err
		}
		if len(rest) != 0 {
			return nil, nil, malformed("%d trailing bytes after a nested call", len(rest))
		}
		c.Input.Call = ic
	}
	if r.err != nil {
		return nil, nil, r.err
	}
	if err := c.check(); err != nil {
		return nil, nil, err
	}
	return c, r.b, nil
}

// reader reads big-endian fields; the first short read sets err, and later
// reads return zeros.
type reader struct {
	b   []byte
	err error
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = malformed("%d bytes missing", n-len(r.b))
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	if b := r.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) uint16() uint16 {
	if b := r.bytes(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *reader) uint32() uint32 {
	if b := r.bytes(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}
