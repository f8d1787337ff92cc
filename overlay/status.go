package overlay

import (
	"time"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/circuit/protover"
	"github.com/darkmatter/darkmatter/overlay/link"
)

// Protocols returns the subprotocol versions a relay of this build signs in
// its descriptor, the link layer's included (spec/protover.md): an exit
// relay's if exit is set.
func Protocols(exit bool) protover.Set {
	n := &Node{}
	if exit {
		n.cfg.Exit = &circuit.ExitConfig{}
	}
	return link.Protocols(n.relayProtocols())
}

// Limits are the resource limits a node enforces (spec/limits.md), its
// configuration with the defaults filled in.
type Limits struct {
	// Relay reports whether the node accepts links; the inbound limits
	// (links, handshakes, circuits peers open, directory answers) bind
	// only a relay.
	Relay                                             bool
	MaxLinks, MaxLinksPerIP                           int
	MaxHandshakes, MaxHandshakesPerIP                 int
	CreateRate                                        float64
	CreateBurst                                       int
	MaxCircuitsPerLink, MaxCircuitsPerIP, MaxCircuits int
	DirMaxAnswers, DirAnswerWindow                    int
	DirAnswerTimeout, DirGetInterval                  time.Duration
	DirGetBurst                                       int
	// MemoryBudget is in cells (link.CellSize bytes each).
	MemoryBudget    int
	MaxCircuitQueue int
	StallTimeout    time.Duration
}

// Limits returns the limits in force, as the link manager, the circuit
// switch and the directory report them (defaults filled in).
func (n *Node) Limits() Limits {
	lm, sw, d := n.links.Config(), n.sw.Config(), n.dir.Config()
	return Limits{
		Relay:              n.isRelay(),
		MaxLinks:           lm.MaxLinks,
		MaxLinksPerIP:      lm.MaxLinksPerIP,
		MaxHandshakes:      lm.MaxHandshakes,
		MaxHandshakesPerIP: lm.MaxHandshakesPerIP,
		CreateRate:         sw.CreateRate,
		CreateBurst:        sw.CreateBurst,
		MaxCircuitsPerLink: sw.MaxCircuitsPerChannel,
		MaxCircuitsPerIP:   sw.MaxCircuitsPerSource,
		MaxCircuits:        sw.MaxCircuits,
		DirMaxAnswers:      d.MaxAnswers,
		DirAnswerWindow:    d.AnswerWindow,
		DirAnswerTimeout:   d.AnswerTimeout,
		DirGetInterval:     d.GetInterval,
		DirGetBurst:        d.GetBurst,
		MemoryBudget:       n.budget.Stats().Max,
		MaxCircuitQueue:    lm.Link.MaxCircuitQueue,
		StallTimeout:       lm.Link.StallTimeout,
	}
}
