package descriptor

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// Family declarations (spec/descriptor.md §1.2). A relay lists the NodeIDs
// of the other relays its operator runs; clients never put two relays
// that list each other in one circuit.
const (
	// ExtFamily is the extension type of a family declaration.
	ExtFamily = 1
	// MaxFamily bounds the relays one declaration lists.
	MaxFamily = 64
)

// Family returns the relays d declares as its family, in ascending order,
// or nil if it declares none. A malformed declaration counts as none
// (spec/descriptor.md §1.2): it can only have kept the declaring relay
// apart from others, and ignoring it keeps every version of this software
// agreeing on which descriptors are valid.
func (d *Descriptor) Family() []keys.NodeID {
	for _, e := range d.extensions {
		if e.typ == ExtFamily {
			ids, err := parseFamily(e.value)
			if err != nil {
				return nil
			}
			return ids
		}
	}
	return nil
}

// SetFamily sets d's family declaration to ids (in any order, each at
// most once, at most MaxFamily); an empty ids removes it. Call it before
// Sign: the declaration is covered by the signature.
func (d *Descriptor) SetFamily(ids []keys.NodeID) error {
	if len(ids) > MaxFamily {
		return fmt.Errorf("descriptor: family of %d relays, at most %d", len(ids), MaxFamily)
	}
	sorted := slices.Clone(ids)
	slices.SortFunc(sorted, func(a, b keys.NodeID) int { return bytes.Compare(a[:], b[:]) })
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			return fmt.Errorf("descriptor: relay %s listed twice in the family", sorted[i])
		}
	}
	es := slices.DeleteFunc(slices.Clone(d.extensions), func(e extension) bool { return e.typ == ExtFamily })
	if len(sorted) > 0 {
		v := make([]byte, 0, 1+len(sorted)*keys.NodeIDSize)
		v = append(v, byte(len(sorted)))
		for _, id := range sorted {
			v = append(v, id[:]...)
		}
		i, _ := slices.BinarySearchFunc(es, uint16(ExtFamily), func(e extension, t uint16) int { return int(e.typ) - int(t) })
		es = slices.Insert(es, i, extension{typ: ExtFamily, value: v})
	}
	d.extensions = es
	return nil
}

var errFamilyEmpty = errors.New("descriptor: family: empty value")

// parseFamily decodes a family value: a count (1 byte, at most MaxFamily)
// and that many NodeIDs in strictly ascending order. A count of 0 is
// valid and declares nobody.
func parseFamily(v []byte) ([]keys.NodeID, error) {
	if len(v) == 0 {
		return nil, errFamilyEmpty
	}
	n := int(v[0])
	if n > MaxFamily {
		return nil, fmt.Errorf("descriptor: family: %d relays, at most %d", n, MaxFamily)
	}
	if len(v) != 1+n*keys.NodeIDSize {
		return nil, fmt.Errorf("descriptor: family: %d bytes for %d relays, want %d", len(v), n, 1+n*keys.NodeIDSize)
	}
	if n == 0 {
		return nil, nil
	}
	ids := make([]keys.NodeID, n)
	for i := range ids {
		copy(ids[i][:], v[1+i*keys.NodeIDSize:])
		if i > 0 && bytes.Compare(ids[i-1][:], ids[i][:]) >= 0 {
			return nil, fmt.Errorf("descriptor: family: relay %d out of order or repeated", i)
		}
	}
	return ids, nil
}
