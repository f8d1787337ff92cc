package overlay

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/circuit/protover"
	"github.com/darkmatter/darkmatter/overlay/link"
	"github.com/darkmatter/darkmatter/overlay/transport"
	"github.com/darkmatter/darkmatter/overlay/transport/memnet"
)

// Node shows applications only what they use: the plumbing between layers
// (circuit.Linker, link.Handler, linkmgr.Handler) lives on unexported
// adapters (STYLE.md item 34).
func TestNodeHasNoPlumbing(t *testing.T) {
	typ := reflect.TypeFor[*Node]()
	for _, name := range []string{"Channel", "HandleCell", "Closed", "LinkUp", "LinkCell", "LinkClosed"} {
		if _, ok := typ.MethodByName(name); ok {
			t.Errorf("Node has the plumbing method %s", name)
		}
	}
}

func TestDialAndListenShapes(t *testing.T) {
	n, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx := context.Background()
	if _, err := n.Listen(ctx, "tcp", ":80"); !errors.Is(err, ErrNoDHT) {
		t.Errorf("Listen before Start: %v, want ErrNoDHT", err)
	}
	if _, err := n.Listen(ctx, "udp", ":80"); err == nil || errors.Is(err, ErrNoDHT) {
		t.Errorf("Listen on udp: %v", err)
	}
	if _, err := n.Dial(ctx, "udp", "example.com:53"); err == nil {
		t.Error("Dial over udp succeeded")
	}
	n.Close()
	if _, err := n.Dial(ctx, "tcp", "example.com:80"); !errors.Is(err, ErrClosed) {
		t.Errorf("Dial after Close: %v", err)
	}
	if _, err := n.Listen(ctx, "tcp", ":80"); !errors.Is(err, ErrClosed) {
		t.Errorf("Listen after Close: %v", err)
	}
}

// Relays sign their subprotocols into their descriptor, and the client's
// hops carry them, so it sends a hop only what the hop speaks.
func TestHopsCarryProtocols(t *testing.T) {
	h := newHarness(t, "mem", 4)
	defer h.close()
	for _, d := range h.client.Relays() {
		p := d.Protocols
		if !p.Supports(protover.Link, 1) || !p.Supports(protover.Relay, 2) || !p.Supports(protover.Dir, 1) ||
			!p.Supports(protover.Joint, 1) || !p.Supports(protover.Exit, 1) {
			t.Errorf("an exit relay advertises %v", p)
		}
		if p.Supports(protover.LinkAES, 1) != link.HardwareAES() {
			t.Errorf("LinkAES in %v, hardware AES %v", p, link.HardwareAES())
		}
		if a, err := transport.ParseAddr(d.Addrs[0]); err != nil || a.Scheme != memnet.Scheme {
			t.Errorf("descriptor address %q", d.Addrs[0])
		}
	}
	st, err := h.client.DialStream(ctxT(t), h.target.addr, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i, hop := range st.(*circuit.Stream).Circuit().Hops() {
		if hop.Protocols.IsEmpty() || !hop.Protocols.Equal(h.relayByIdentity(st, i).Descriptor().Protocols) {
			t.Errorf("hop %d carries protocols %v", i, hop.Protocols)
		}
	}
	// A relay that is not an exit does not advertise Exit.
	r, err := New(Config{Network: "test-mem", Listen: []string{memnet.Scheme + "://10.99.0.1:7000"},
		Transports: transport.Registry{memnet.Scheme: h.mem.Host("10.99.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if p := r.Descriptor().Protocols; p.Supports(protover.Exit, 1) || !p.Supports(protover.Relay, 1) {
		t.Errorf("a middle relay advertises %v", p)
	}
}
