package overlay

import (
	"context"
	"errors"
	"reflect"
	"testing"
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
	if _, err := n.Listen(ctx, "tcp", ":80"); !errors.Is(err, ErrNotAvailable) {
		t.Errorf("Listen: %v, want ErrNotAvailable", err)
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
