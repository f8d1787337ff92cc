package descriptor

import (
	"errors"
	"slices"
)

// Reachability (spec/descriptor.md §1.4): what a relay learned of its own
// address from STUN answers of other relays (spec/nat.md), so that nodes
// know whether it can be dialled directly.
const (
	// ExtReach is the extension type of a reachability entry.
	ExtReach = 3
	// ReachLen is the length of the value this version writes; parsers
	// accept longer values and ignore the bytes after it.
	ReachLen = 3
)

// Reachability of a relay.
const (
	ReachUnknown = 0 // not probed yet, or no STUN answer
	ReachPublic  = 1 // the address other relays saw is one of its own
	ReachNAT     = 2 // behind a NAT: other relays saw another address
)

// NAT behaviour, for mapping and filtering (RFC 4787, spec/nat.md §3).
const (
	BehaviorUnknown             = 0
	BehaviorEndpointIndependent = 1
	BehaviorAddressDependent    = 2
	BehaviorAddressPortDepend   = 3
)

// Reach is a relay's reachability entry.
type Reach struct {
	Status    uint8 // ReachUnknown, ReachPublic or ReachNAT
	Mapping   uint8 // Behavior*: how its NAT maps (BehaviorUnknown when public)
	Filtering uint8 // Behavior*: how its NAT filters
}

var errReach = errors.New("descriptor: reachability: malformed value")

func (r Reach) check() error {
	if r.Status > ReachNAT || r.Mapping > BehaviorAddressPortDepend || r.Filtering > BehaviorAddressPortDepend {
		return errReach
	}
	return nil
}

// parseReach decodes a reachability value: its first ReachLen bytes, each
// in range; later bytes are ignored.
func parseReach(v []byte) (Reach, error) {
	if len(v) < ReachLen {
		return Reach{}, errReach
	}
	r := Reach{Status: v[0], Mapping: v[1], Filtering: v[2]}
	return r, r.check()
}

// Reach returns the reachability d's relay advertises; false if d carries
// no entry or a malformed one (ignored, never fatal, as for type 2).
func (d *Descriptor) Reach() (Reach, bool) {
	for _, e := range d.extensions {
		if e.typ == ExtReach {
			r, err := parseReach(e.value)
			return r, err == nil
		}
	}
	return Reach{}, false
}

// SetReach sets d's reachability entry to r. Call it before Sign. On
// error d is unchanged.
func (d *Descriptor) SetReach(r Reach) error {
	if err := r.check(); err != nil {
		return err
	}
	es := slices.DeleteFunc(slices.Clone(d.extensions), func(e extension) bool { return e.typ == ExtReach })
	i, _ := slices.BinarySearchFunc(es, uint16(ExtReach), func(e extension, t uint16) int { return int(e.typ) - int(t) })
	d.extensions = slices.Insert(es, i, extension{typ: ExtReach, value: []byte{r.Status, r.Mapping, r.Filtering}})
	return nil
}
