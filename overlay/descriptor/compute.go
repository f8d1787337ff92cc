package descriptor

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Compute capacity (spec/descriptor.md §1.3). A relay that runs delegated
// calls (protover Compute=1) advertises how much it takes on, so that a
// client can pick an executor whose limits fit its call before opening a
// BEGIN_COMPUTE stream.
const (
	// ExtCompute is the extension type of a compute capacity entry.
	ExtCompute = 2
	// ComputeLen is the length of the value this version writes; parsers
	// accept longer values and ignore the bytes after it.
	ComputeLen = 11
	// MaxComputeMemoryPages bounds Compute.MemoryPages: 65,536 pages of 64
	// KiB are 4 GiB, all a 32-bit WebAssembly memory can address.
	MaxComputeMemoryPages = 65536
	// MaxComputeTimeout bounds Compute.Timeout.
	MaxComputeTimeout = time.Hour
	// MaxComputeDepth bounds Compute.MaxDepth.
	MaxComputeDepth = 16
)

// Compute is what a relay's executor of delegated calls advertises.
type Compute struct {
	Capacity    uint16        // calls it runs at once, 1..65535
	MemoryPages uint32        // most linear memory per call, 64 KiB pages, 1..65536
	Timeout     time.Duration // most wall time per call, whole milliseconds, 1 ms..1 h
	MaxDepth    uint8         // sub-call depth it carries, 0..16
}

var errComputeShort = errors.New("descriptor: compute: value shorter than 11 bytes")

// check reports why c cannot be advertised, or nil.
func (c Compute) check() error {
	switch {
	case c.Capacity == 0:
		return errors.New("descriptor: compute: capacity 0, at least 1")
	case c.MemoryPages == 0 || c.MemoryPages > MaxComputeMemoryPages:
		return fmt.Errorf("descriptor: compute: %d memory pages, want 1..%d", c.MemoryPages, MaxComputeMemoryPages)
	case c.Timeout < time.Millisecond || c.Timeout > MaxComputeTimeout:
		return fmt.Errorf("descriptor: compute: timeout %v, want 1ms..%v", c.Timeout, MaxComputeTimeout)
	case c.Timeout%time.Millisecond != 0:
		return fmt.Errorf("descriptor: compute: timeout %v is not whole milliseconds", c.Timeout)
	case c.MaxDepth > MaxComputeDepth:
		return fmt.Errorf("descriptor: compute: depth %d, at most %d", c.MaxDepth, MaxComputeDepth)
	}
	return nil
}

// appendCompute appends the wire form of c (spec/descriptor.md §1.3).
func appendCompute(b []byte, c Compute) []byte {
	b = binary.BigEndian.AppendUint16(b, c.Capacity)
	b = binary.BigEndian.AppendUint32(b, c.MemoryPages)
	b = binary.BigEndian.AppendUint32(b, uint32(c.Timeout/time.Millisecond))
	return append(b, c.MaxDepth)
}

// parseCompute decodes a compute value: its first ComputeLen bytes, each
// field in range; bytes after them are a later version's fields and are
// ignored.
func parseCompute(v []byte) (Compute, error) {
	if len(v) < ComputeLen {
		return Compute{}, errComputeShort
	}
	c := Compute{
		Capacity:    binary.BigEndian.Uint16(v),
		MemoryPages: binary.BigEndian.Uint32(v[2:]),
		Timeout:     time.Duration(binary.BigEndian.Uint32(v[6:])) * time.Millisecond,
		MaxDepth:    v[10],
	}
	if err := c.check(); err != nil {
		return Compute{}, err
	}
	return c, nil
}

// Compute returns the capacity d's relay advertises for delegated calls;
// false if d carries no compute entry or a malformed one. A malformed
// entry is ignored, never fatal (spec/descriptor.md §1.3), as a malformed
// family is.
func (d *Descriptor) Compute() (Compute, bool) {
	for _, e := range d.extensions {
		if e.typ == ExtCompute {
			c, err := parseCompute(e.value)
			return c, err == nil
		}
	}
	return Compute{}, false
}

// SetCompute sets d's compute entry to c after checking every field is in
// its range (Timeout also in whole milliseconds). Call it before Sign: the
// entry is covered by the signature. On error d is unchanged.
func (d *Descriptor) SetCompute(c Compute) error {
	if err := c.check(); err != nil {
		return err
	}
	es := slices.DeleteFunc(slices.Clone(d.extensions), func(e extension) bool { return e.typ == ExtCompute })
	i, _ := slices.BinarySearchFunc(es, uint16(ExtCompute), func(e extension, t uint16) int { return int(e.typ) - int(t) })
	d.extensions = slices.Insert(es, i, extension{typ: ExtCompute, value: appendCompute(make([]byte, 0, ComputeLen), c)})
	return nil
}
