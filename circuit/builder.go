package circuit

import (
	"context"
	"net"
)

// Builder builds a circuit through a path. The Manager builds through
// one, so its path and reuse policy run without crypto or sockets in tests
// (as arti's tor-circmgr is written against an abstract tunnel builder). A
// failure at a known hop is a *BuildError naming it.
type Builder interface {
	Build(ctx context.Context, path []Hop) (Circuit, error)
}

// Circuit is what the Manager needs of a built circuit. *ClientCirc is one,
// through the Switch's Builder.
type Circuit interface {
	// Hops returns the path the circuit was built through.
	Hops() []Hop
	// Done is closed when the circuit is destroyed.
	Done() <-chan struct{}
	// Streams returns the number of open streams.
	Streams() int
	// OpenStream opens a stream to target ("host:port") at the last hop.
	// An error wrapping ErrDestroyed means the circuit died.
	OpenStream(ctx context.Context, target string) (net.Conn, error)
	// Close destroys the circuit.
	Close() error
}

// switchBuilder is the Builder of a Switch: it builds real circuits.
type switchBuilder struct{ sw *Switch }

func (b switchBuilder) Build(ctx context.Context, path []Hop) (Circuit, error) {
	cc, err := b.sw.BuildCircuit(ctx, path)
	if err != nil {
		return nil, err
	}
	return switchCircuit{cc}, nil
}

// switchCircuit is a *ClientCirc as a Circuit: its OpenStream returns a
// net.Conn.
type switchCircuit struct{ *ClientCirc }

func (c switchCircuit) OpenStream(ctx context.Context, target string) (net.Conn, error) {
	st, err := c.ClientCirc.OpenStream(ctx, target)
	if err != nil {
		return nil, err // not a typed nil in a net.Conn
	}
	return st, nil
}
