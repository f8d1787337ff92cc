package dht

import (
	"fmt"
	"sync"
	"time"
)

// ClockSkew is how far past now + MaxTTL a record's expiry may lie, for
// clocks that disagree.
const ClockSkew = 5 * time.Minute

// TypeSpec is what the registry knows about one record type.
type TypeSpec struct {
	// Name names the type in logs and stats.
	Name string
	// MaxValue is the largest value, at most MaxValueSize.
	MaxValue int
	// MaxTTL is how far in the future an expiry may be, counted from the
	// time of the check.
	MaxTTL time.Duration
	// Validate checks the type's own rules, above all that the key is
	// derived from the owner and value as the type demands (so a peer
	// cannot squat another owner's key). The signature, network, size and
	// expiry are checked before it runs. It must not be nil.
	Validate func(r *Record) error
	// Exclusive makes a key first come, first served: a node holding an
	// unexpired record of the type and key under one owner refuses the
	// records of every other owner (ReasonTaken) until it expires
	// (spec/dht.md §2.4). The holder still replaces its own record by Seq.
	Exclusive bool
}

// Registry maps record types to their rules. Types unknown to a node's
// registry are refused on store and on fetch. It is safe for concurrent
// use.
type Registry struct {
	mu    sync.RWMutex // guards types
	types map[uint16]TypeSpec
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{types: make(map[uint16]TypeSpec)} }

// DefaultRegistry returns a registry holding the types this package
// defines: TypeSigned.
func DefaultRegistry() *Registry {
	g := NewRegistry()
	if err := g.Register(TypeSigned, SignedSpec); err != nil {
		panic(err) // unreachable: a constant spec on an empty registry
	}
	return g
}

// Register adds a type. It refuses type 0, a type already present, a nil
// Validate, a MaxValue out of 0..MaxValueSize and a MaxTTL that is not
// positive.
func (g *Registry) Register(t uint16, s TypeSpec) error {
	switch {
	case t == 0:
		return fmt.Errorf("dht: type 0 is reserved")
	case s.Validate == nil:
		return fmt.Errorf("dht: type %d: no Validate", t)
	case s.MaxValue < 0 || s.MaxValue > MaxValueSize:
		return fmt.Errorf("dht: type %d: MaxValue %d out of 0..%d", t, s.MaxValue, MaxValueSize)
	case s.MaxTTL <= 0:
		return fmt.Errorf("dht: type %d: MaxTTL must be positive", t)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.types[t]; ok {
		return fmt.Errorf("dht: type %d already registered", t)
	}
	g.types[t] = s
	return nil
}

// Lookup returns the spec of type t.
func (g *Registry) Lookup(t uint16) (TypeSpec, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	s, ok := g.types[t]
	return s, ok
}

// exclusive reports whether type t is registered as Exclusive.
func (g *Registry) exclusive(t uint16) bool {
	s, _ := g.Lookup(t)
	return s.Exclusive
}

// Verify checks r completely for network at now: a registered type, the
// value size, an expiry in (now, now+MaxTTL+ClockSkew], the signature, and
// the type's Validate. The error is a *RefusedError naming the reason.
func (g *Registry) Verify(r *Record, network string, now time.Time) error {
	if err := g.checkTime(r, now); err != nil {
		return err
	}
	s, _ := g.Lookup(r.Type)
	if !r.VerifySignature(network) {
		return refuse(ReasonBadSig, "")
	}
	if err := s.Validate(r); err != nil {
		return refuse(ReasonBadKey, "%s: %v", s.Name, err)
	}
	return nil
}

// checkTime checks the type, size and expiry of r: everything Verify
// checks that does not need the signature.
func (g *Registry) checkTime(r *Record, now time.Time) error {
	s, ok := g.Lookup(r.Type)
	if !ok {
		return refuse(ReasonUnknownType, "type %d", r.Type)
	}
	if len(r.Value) > s.MaxValue {
		return refuse(ReasonTooLarge, "%s value of %d bytes exceeds %d", s.Name, len(r.Value), s.MaxValue)
	}
	exp := r.ExpiresAt()
	if !exp.After(now) {
		return refuse(ReasonExpired, "")
	}
	if exp.After(now.Add(s.MaxTTL + ClockSkew)) {
		return refuse(ReasonTooLong, "%s expiry more than %v ahead", s.Name, s.MaxTTL)
	}
	return nil
}
