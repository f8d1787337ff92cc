package circuit

// Flow-control tuning constants (spec/streams.md §3). Windows count DATA
// cells only. The values were picked with `darkmatter bench` on loopback: a
// 2 MiB circuit window keeps a 3-hop circuit busy while bounding what a relay
// may ever have to queue for one circuit.
const (
	// CircWindow is how many DATA cells an edge may send on a circuit before
	// it needs a circuit-level SENDME.
	CircWindow = 512
	// CircSendmeInc is how many cells one circuit-level SENDME acknowledges.
	CircSendmeInc = 64
	// StreamWindow is the per-stream window.
	StreamWindow = 256
	// StreamSendmeInc is how many cells one stream-level SENDME acknowledges.
	StreamSendmeInc = 32
)
