package protover

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"strings"
)

// ID names a subprotocol.
type ID uint8

// Protocol IDs (spec/protover.md §2). Adding one is backwards compatible:
// older nodes keep it in the Sets they parse and ignore it.
const (
	// Link is the link cell protocol (spec/links.md, spec/cells.md §2).
	Link ID = 1
	// Relay is the relay message protocol at circuit ends (spec/cells.md
	// §3): version 1 the original commands; version 2 adds half-close
	// (END DONE closes one direction, spec/streams.md) and BEGIN_DIR.
	Relay ID = 2
	// Exit means the relay opens TCP streams for BEGIN (spec/streams.md).
	Exit ID = 3
	// Dir means the relay serves its directory: DIR_GET on a link (v1),
	// BEGIN_DIR streams on a circuit (v2), and GOSSIP cells with
	// anti-entropy digests on a link (v3, spec/gossip.md).
	Dir ID = 4
	// Joint means the relay joins two circuits end to end
	// (spec/circuits.md §7).
	Joint ID = 5
	// LinkAES means the node has hardware AES and prefers AESGCM links
	// (spec/links.md §3): an initiator that sees it in a relay's
	// descriptor refuses to be talked down to ChaChaPoly by that relay.
	LinkAES ID = 6
	// DHT means the relay takes part in the DHT: DHT cells on a link
	// (spec/dht.md).
	DHT ID = 7
	// Intro means the relay is an introduction point for hidden services:
	// ESTABLISH_INTRO and INTRODUCE1 at a circuit's last hop
	// (spec/circuits.md §9).
	Intro ID = 8
	// Compute means the relay runs delegated calls: BEGIN_COMPUTE streams
	// at a circuit's last hop (spec/streams.md §5.2, spec/compute.md §4).
	Compute ID = 9
	// Hop means the relay relays links to nodes behind NAT: it takes
	// RESERVE messages in NAT cells and splices connections
	// (spec/nat.md §8).
	Hop ID = 10
	// Punch means the node takes PUNCH messages in NAT cells and punches
	// a direct QUIC path to the link's other end (spec/nat.md §8.4).
	Punch ID = 11
	// LinkMove means the node can move a link to another connection with
	// a MOVE cell (spec/links.md §5.4), as after hole punching.
	LinkMove ID = 12
)

// MaxVersion is the highest version a Set can hold.
const MaxVersion = 32

// MaxEntries bounds the protocols in one Set.
const MaxEntries = 64

// Set is a set of supported versions per protocol. The zero value is the
// empty set. A Set is a value: methods that change it return a new one.
type Set struct {
	e []entry // sorted by id, mask != 0
}

type entry struct {
	id   ID
	mask uint32
}

var errMalformed = errors.New("protover: malformed set")

// New returns a Set built from pairs of ID and version ranges written as
// "1-3" or "2"; it panics on a bad range (for constant tables).
func New(pairs map[ID]string) Set {
	var s Set
	for id, r := range pairs {
		lo, hi, err := parseRange(r)
		if err != nil {
			panic(err)
		}
		for v := lo; v <= hi; v++ {
			s = s.With(id, v)
		}
	}
	return s
}

// With returns s plus version v of protocol id.
func (s Set) With(id ID, v int) Set {
	if v < 1 || v > MaxVersion {
		return s
	}
	e := slices.Clone(s.e)
	i, found := slices.BinarySearchFunc(e, id, func(x entry, id ID) int { return int(x.id) - int(id) })
	if found {
		e[i].mask |= 1 << (v - 1)
	} else {
		e = slices.Insert(e, i, entry{id, 1 << (v - 1)})
	}
	return Set{e}
}

func (s Set) mask(id ID) uint32 {
	i, found := slices.BinarySearchFunc(s.e, id, func(x entry, id ID) int { return int(x.id) - int(id) })
	if !found {
		return 0
	}
	return s.e[i].mask
}

// Supports reports whether s lists version v of protocol id.
func (s Set) Supports(id ID, v int) bool {
	return v >= 1 && v <= MaxVersion && s.mask(id)&(1<<(v-1)) != 0
}

// Max returns the highest version of id in s, or 0.
func (s Set) Max(id ID) int { return bits.Len32(s.mask(id)) }

// Highest returns the highest version of id that both s and o list, or 0.
func (s Set) Highest(o Set, id ID) int { return bits.Len32(s.mask(id) & o.mask(id)) }

// IsEmpty reports whether s lists nothing.
func (s Set) IsEmpty() bool { return len(s.e) == 0 }

// Equal reports whether s and o list the same versions.
func (s Set) Equal(o Set) bool { return slices.Equal(s.e, o.e) }

// Len returns the wire size of s in bytes.
func (s Set) Len() int { return 1 + 5*len(s.e) }

// Append appends the wire form of s to b.
func (s Set) Append(b []byte) []byte {
	b = append(b, byte(len(s.e)))
	for _, e := range s.e {
		b = append(b, byte(e.id), byte(e.mask>>24), byte(e.mask>>16), byte(e.mask>>8), byte(e.mask))
	}
	return b
}

// Marshal returns the wire form of s.
func (s Set) Marshal() []byte { return s.Append(make([]byte, 0, s.Len())) }

// Parse decodes a Set from the start of b and returns it with the number of
// bytes it used. It refuses more than MaxEntries entries, IDs out of order
// or repeated, and empty version masks, so every Set has one encoding.
func Parse(b []byte) (Set, int, error) {
	if len(b) < 1 {
		return Set{}, 0, fmt.Errorf("%w: empty", errMalformed)
	}
	n := int(b[0])
	if n > MaxEntries {
		return Set{}, 0, fmt.Errorf("%w: %d entries, at most %d", errMalformed, n, MaxEntries)
	}
	used := 1 + 5*n
	if len(b) < used {
		return Set{}, 0, fmt.Errorf("%w: truncated", errMalformed)
	}
	e := make([]entry, n)
	for i := range e {
		p := b[1+5*i:]
		e[i] = entry{ID(p[0]), uint32(p[1])<<24 | uint32(p[2])<<16 | uint32(p[3])<<8 | uint32(p[4])}
		if e[i].mask == 0 {
			return Set{}, 0, fmt.Errorf("%w: protocol %d has no versions", errMalformed, p[0])
		}
		if i > 0 && e[i].id <= e[i-1].id {
			return Set{}, 0, fmt.Errorf("%w: protocols out of order", errMalformed)
		}
	}
	if n == 0 {
		e = nil
	}
	return Set{e}, used, nil
}

var names = map[ID]string{Link: "Link", Relay: "Relay", Exit: "Exit", Dir: "Dir", Joint: "Joint", LinkAES: "LinkAES", DHT: "DHT", Intro: "Intro", Compute: "Compute", Hop: "Hop", Punch: "Punch", LinkMove: "LinkMove"}

// String returns s in Tor's "proto" form, "Link=1 Relay=1-2 Exit=1";
// unknown protocols appear as "P<id>=...".
func (s Set) String() string {
	var parts []string
	for _, e := range s.e {
		name, ok := names[e.id]
		if !ok {
			name = "P" + strconv.Itoa(int(e.id))
		}
		var rs []string
		for v := 1; v <= MaxVersion; v++ {
			if e.mask&(1<<(v-1)) == 0 {
				continue
			}
			hi := v
			for hi < MaxVersion && e.mask&(1<<hi) != 0 {
				hi++
			}
			if hi == v {
				rs = append(rs, strconv.Itoa(v))
			} else {
				rs = append(rs, strconv.Itoa(v)+"-"+strconv.Itoa(hi))
			}
			v = hi
		}
		parts = append(parts, name+"="+strings.Join(rs, ","))
	}
	return strings.Join(parts, " ")
}

// ParseString is the inverse of String.
func ParseString(str string) (Set, error) {
	var s Set
	for _, f := range strings.Fields(str) {
		name, ranges, ok := strings.Cut(f, "=")
		if !ok {
			return Set{}, fmt.Errorf("%w: %q", errMalformed, f)
		}
		id, ok := idByName(name)
		if !ok {
			return Set{}, fmt.Errorf("%w: unknown protocol %q", errMalformed, name)
		}
		for _, r := range strings.Split(ranges, ",") {
			lo, hi, err := parseRange(r)
			if err != nil {
				return Set{}, err
			}
			for v := lo; v <= hi; v++ {
				s = s.With(id, v)
			}
		}
	}
	return s, nil
}

func idByName(name string) (ID, bool) {
	for id, n := range names {
		if n == name {
			return id, true
		}
	}
	if rest, ok := strings.CutPrefix(name, "P"); ok {
		v, err := strconv.ParseUint(rest, 10, 8)
		return ID(v), err == nil
	}
	return 0, false
}

func parseRange(r string) (int, int, error) {
	a, b, isRange := strings.Cut(r, "-")
	lo, err1 := strconv.Atoi(a)
	hi := lo
	var err2 error
	if isRange {
		hi, err2 = strconv.Atoi(b)
	}
	if err1 != nil || err2 != nil || lo < 1 || hi > MaxVersion || lo > hi {
		return 0, 0, fmt.Errorf("%w: bad version range %q", errMalformed, r)
	}
	return lo, hi, nil
}
