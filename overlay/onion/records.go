package onion

import (
	"errors"

	"github.com/darkmatter/darkmatter/crypto/hs"
	"github.com/darkmatter/darkmatter/crypto/hsblind"
	"github.com/darkmatter/darkmatter/overlay/dht"
)

// DescriptorSpec is the DHT type rule of hidden-service descriptors
// (spec/dht.md §2.3, type 2): the key is derived from the owner, which is
// the blinded key that signed the record, so one service's descriptor
// cannot be stored under, or replace, another's.
var DescriptorSpec = dht.TypeSpec{
	Name:     "hsdesc",
	MaxValue: hs.DescriptorMaxValue,
	MaxTTL:   hs.DescriptorMaxTTL,
	Validate: validateDescriptor,
}

var errDescriptorKey = errors.New("key is not derived from the blinded key")

func validateDescriptor(r *dht.Record) error {
	if dht.Key(hs.DescriptorKey(hsblind.BlindedPublicKey(r.Owner))) != r.Key {
		return errDescriptorKey
	}
	return hs.CheckDescriptorValue(r.Value)
}

// RegisterTypes adds the record types of hidden services to g.
func RegisterTypes(g *dht.Registry) error {
	return g.Register(hs.DescriptorType, DescriptorSpec)
}
