package dht

import "fmt"

// Reason says why a record or a request was refused. It is the status byte
// of a STORED answer (spec/dht.md §3.5) and indexes Stats.Refused.
type Reason uint8

// Reasons. Stored (0) is success; the others are refusals.
const (
	Stored            Reason = iota // the record was stored
	ReasonMalformed                 // the request or record does not decode
	ReasonBadSig                    // the signature does not verify for this network
	ReasonUnknownType               // the type is not registered
	ReasonTooLarge                  // the value exceeds the type's limit
	ReasonExpired                   // the expiry is past
	ReasonTooLong                   // the expiry is beyond now + MaxTTL + skew
	ReasonBadKey                    // the key or value breaks the type's rule
	ReasonStale                     // a record with this or a higher Seq is held
	ReasonRate                      // the source sent too many STOREs
	ReasonFull                      // the store is at a capacity limit
	ReasonNotServer                 // this node stores nothing
	ReasonTaken                     // an Exclusive key is held by another owner
	numReasons
)

var reasonNames = [numReasons]string{
	"stored", "malformed", "bad signature", "unknown type", "too large", "expired",
	"expiry too far", "bad key", "stale", "rate limited", "full", "not a server",
	"taken",
}

// String names the reason.
func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason %d", uint8(r))
}

// RefusedError is a refusal with its reason.
type RefusedError struct {
	Reason Reason
	Detail string
}

func (e *RefusedError) Error() string {
	if e.Detail == "" {
		return "dht: refused: " + e.Reason.String()
	}
	return "dht: refused: " + e.Reason.String() + ": " + e.Detail
}

func refuse(r Reason, format string, args ...any) error {
	return &RefusedError{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// reasonOf returns the reason of err, or ReasonMalformed.
func reasonOf(err error) Reason {
	if e, ok := err.(*RefusedError); ok {
		return e.Reason
	}
	return ReasonMalformed
}
