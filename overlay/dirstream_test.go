package overlay

import (
	"testing"

	"github.com/darkmatter/darkmatter/overlay/dir"
)

// A client fetches a relay's whole directory through a 3-hop circuit
// (BEGIN_DIR to the last hop, which advertises Dir=2): the relay serving it
// never sees the client.
func TestDirectoryOverCircuit(t *testing.T) {
	h := newHarness(t, "mem", 4)
	defer h.close()
	cc, err := h.client.Manager().Build(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	st, err := cc.OpenDirStream(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	d := dir.New(dir.Config{Network: "test-mem"})
	n, err := d.ReadStream(st)
	if err != nil {
		t.Fatal(err)
	}
	last := cc.Hops()[len(cc.Hops())-1]
	want := -1
	for _, r := range h.relays {
		if r.Descriptor().Identity == last.Identity {
			want = len(r.Relays())
		}
	}
	// The hop may learn more relays (from HELLOs of new links) after it answered.
	if n > want || d.Len() != n || n < 2 {
		t.Fatalf("got %d descriptors over the circuit (%d kept), the last hop knows %d", n, d.Len(), want)
	}
}
