package overlay

import (
	"time"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/circuit/protover"
	"github.com/darkmatter/darkmatter/internal/defaults"
	"github.com/darkmatter/darkmatter/overlay/dir"
	"github.com/darkmatter/darkmatter/overlay/link"
	"github.com/darkmatter/darkmatter/overlay/linkmgr"
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

// Limits returns the limits in force.
func (n *Node) Limits() Limits {
	c := n.cfg
	l := Limits{
		Relay:              n.isRelay(),
		MaxLinks:           c.MaxLinks,
		MaxLinksPerIP:      c.MaxLinksPerIP,
		MaxHandshakes:      c.MaxHandshakes,
		MaxHandshakesPerIP: c.MaxHandshakesPerIP,
		CreateRate:         c.CreateRate,
		CreateBurst:        c.CreateBurst,
		MaxCircuitsPerLink: c.MaxCircuitsPerLink,
		MaxCircuitsPerIP:   c.MaxCircuitsPerIP,
		MaxCircuits:        c.MaxCircuits,
		DirMaxAnswers:      c.DirMaxAnswers,
		DirAnswerWindow:    c.DirAnswerWindow,
		DirAnswerTimeout:   c.DirAnswerTimeout,
		DirGetInterval:     c.DirGetInterval,
		DirGetBurst:        c.DirGetBurst,
		MemoryBudget:       n.budget.Stats().Max,
		MaxCircuitQueue:    c.MaxCircuitQueue,
		StallTimeout:       c.StallTimeout,
	}
	defaults.Set(&l.MaxLinks, linkmgr.DefaultMaxLinks)
	defaults.Set(&l.MaxLinksPerIP, linkmgr.DefaultMaxLinksPerIP)
	defaults.Set(&l.MaxHandshakes, linkmgr.DefaultMaxHandshakes)
	defaults.Set(&l.MaxHandshakesPerIP, linkmgr.DefaultMaxHandshakesPerIP)
	defaults.Set(&l.CreateRate, circuit.DefaultCreateRate)
	defaults.Set(&l.CreateBurst, circuit.DefaultCreateBurst)
	defaults.Set(&l.MaxCircuitsPerLink, circuit.DefaultMaxCircuitsPerChannel)
	defaults.Set(&l.MaxCircuits, circuit.DefaultMaxCircuits)
	defaults.Set(&l.MaxCircuitsPerIP, max(l.MaxCircuits/8, 1))
	defaults.Set(&l.DirMaxAnswers, dir.DefaultMaxAnswers)
	defaults.Set(&l.DirAnswerWindow, dir.DefaultAnswerWindow)
	defaults.Set(&l.DirAnswerTimeout, dir.DefaultAnswerTimeout)
	defaults.Set(&l.DirGetInterval, dir.DefaultGetInterval)
	defaults.Set(&l.DirGetBurst, dir.DefaultGetBurst)
	defaults.Set(&l.MaxCircuitQueue, link.DefaultMaxCircuitQueue)
	defaults.Set(&l.StallTimeout, link.DefaultStallTimeout)
	return l
}
