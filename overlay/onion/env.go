package onion

import (
	"context"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/dht"
)

// Env is what services and clients need from the node they run on. Every
// circuit it builds belongs to the caller, who closes it, and every DHT
// request goes through a circuit, so no relay or DHT node learns this
// node's address from a hidden-service operation.
type Env interface {
	// Network is the network name.
	Network() string
	// BuildTo builds a circuit whose last hop is the relay with id.
	BuildTo(ctx context.Context, id keys.NodeID) (*circuit.ClientCirc, error)
	// BuildRendezvous builds a circuit whose last hop joins circuits
	// (Joint=1).
	BuildRendezvous(ctx context.Context) (*circuit.ClientCirc, error)
	// IntroCandidates returns relays that serve as introduction points
	// (Intro=1), in random order.
	IntroCandidates() []keys.NodeID
	// Put stores a record in the DHT through a circuit and republishes it
	// until it expires.
	Put(ctx context.Context, r *dht.Record) (int, error)
	// Get looks records up in the DHT through a circuit.
	Get(ctx context.Context, typ uint16, key dht.Key) ([]*dht.Record, error)
	// Logf logs; it must redact addresses and keys itself.
	Logf(format string, args ...any)
}

// introduceObserver, when an Env implements it, sees every INTRODUCE2 body
// exactly as an introduction point passed it on, before any check: tests
// use it to check what introduction points carry.
type introduceObserver interface {
	ObserveIntroduce2(body []byte)
}
