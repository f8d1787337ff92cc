package overlay

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/specialname"
	"github.com/darkmatter/darkmatter/internal/streamerr"
	"github.com/darkmatter/darkmatter/overlay/onion"
)

// Names that must stay on this node are refused by Dial before any circuit
// is built (spec/streams.md §7).
func TestDialRefusesSpecialNames(t *testing.T) {
	h := newHarness(t, "mem", 3)
	defer h.close()
	before := h.client.ClientCircuits()
	for _, addr := range []string{"site.onion:80", "localhost:22"} {
		_, err := h.client.Dial(ctxT(t), "tcp", addr)
		if !errors.Is(err, streamerr.New(streamerr.Unreachable)) {
			t.Errorf("Dial(%q) = %v, want host unreachable", addr, err)
		}
	}
	// A mistyped name (not a 56-byte address label, not a valid name) is
	// refused; a valid name nobody registered is not found.
	for addr, want := range map[string]error{"a_b.dark:80": ErrBadAddress, "x.DARK.:443": specialname.ErrNameNotFound, "abcdefgh.dark:80": specialname.ErrNameNotFound} {
		if _, err := h.client.Dial(ctxT(t), "tcp", addr); !errors.Is(err, want) {
			t.Errorf("Dial(%q) = %v, want %v", addr, err, want)
		}
	}
	if got := h.client.ClientCircuits(); got != before {
		t.Fatalf("circuits %d -> %d: a refused name built a circuit", before, got)
	}
	// A valid address is a hidden service, looked up by its blinded key:
	// one nobody published is not found.
	if _, err := h.client.Dial(ctxT(t), "tcp", keys.ServiceFromSeed([32]byte{1}).Public().Address()+":80"); !errors.Is(err, onion.ErrDescriptorNotFound) {
		t.Errorf("Dial(unpublished .dark) = %v, want ErrDescriptorNotFound", err)
	}
}

// An exit's policy also rejects the relay's own addresses (spec/exit-policy.md
// §3.1), without changing the caller's ExitConfig or the policy's text.
func TestExitRejectsOwnAddrs(t *testing.T) {
	orig := &circuit.ExitConfig{}
	cfg := Config{Exit: orig, Listen: []string{"mem://11.0.0.1:7000"}, Advertise: []string{"tcp://12.0.0.1:9001"}}
	ex := exitWithOwnAddrs(cfg)
	if orig.Policy != nil {
		t.Fatal("the caller's ExitConfig changed")
	}
	for _, own := range []string{"11.0.0.1", "12.0.0.1"} {
		if ex.Policy.Allows(netip.MustParseAddr(own), 80) {
			t.Errorf("the exit accepts its own address %s", own)
		}
	}
	if !ex.Policy.Allows(netip.MustParseAddr("9.9.9.9"), 80) {
		t.Error("a public target is refused")
	}
	if exitWithOwnAddrs(Config{}) != nil {
		t.Error("a non-exit got an exit config")
	}
}
