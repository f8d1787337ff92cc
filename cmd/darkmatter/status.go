package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/internal/control"
	"github.com/darkmatter/darkmatter/internal/safelog"
	"github.com/darkmatter/darkmatter/overlay"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
	"github.com/urfave/cli/v2"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show what the node running with this --data is doing (over its control socket)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data", Usage: "data directory of the running node", Value: defaultDataDir()},
			&cli.BoolFlag{Name: "paths", Usage: "list the relays of each open circuit (IDs cut to 4 hex digits)"},
			&cli.BoolFlag{Name: "unsafe-logging", Usage: "with --paths, full relay IDs and addresses (debugging only)"},
			&cli.BoolFlag{Name: "json", Usage: "print the node's answer as JSON"},
		},
		Action: func(c *cli.Context) error {
			ctx, cancel := context.WithTimeout(c.Context, control.ReadTimeout+control.WriteTimeout)
			defer cancel()
			st, err := control.Query(ctx, c.String("data"), control.Request{
				Cmd: control.CmdStatus, Paths: c.Bool("paths"), Unsafe: c.Bool("unsafe-logging"),
			})
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return writeJSON(c.App.Writer, st)
			}
			printStatus(c.App.Writer, st)
			return nil
		},
	}
}

// progress records a node's bootstrap progress for status and prints it
// when info is set.
type progress struct {
	info safelog.Logf
	mu   sync.Mutex
	pct  int
	msg  string
}

func (p *progress) report(pct int, msg string) {
	p.mu.Lock()
	p.pct, p.msg = pct, msg
	p.mu.Unlock()
	p.info.Printf("Bootstrapped %d%%: %s", pct, msg)
}

func (p *progress) get() (int, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pct, p.msg
}

// nodeStatus answers the control socket's status request about n.
func nodeStatus(role string, n *overlay.Node, p *progress, req control.Request) *control.Status {
	st := &control.Status{Role: role, Guards: []string{}, Circuits: []control.Circuit{}}
	st.Bootstrap, st.BootstrapMsg = p.get()
	st.Relays = len(n.Relays())
	st.Links = n.Links()
	st.CircuitEnds = n.CircuitEnds()
	hop := func(id, addr string) string {
		s := control.RedactID(id, req.Unsafe)
		if req.Unsafe {
			s += "@" + addr
		}
		return s
	}
	for _, g := range n.Manager().PrimaryGuards() {
		st.Guards = append(st.Guards, hop(g.Identity.NodeID().String(), g.Addr))
	}
	now := time.Now()
	for _, cc := range n.Manager().Open() {
		hops := cc.Hops()
		c := control.Circuit{Hops: len(hops), Streams: cc.Streams(), Age: now.Sub(cc.Created()).Round(time.Second).String()}
		if req.Paths {
			for _, h := range hops {
				c.Path = append(c.Path, hop(h.Identity.NodeID().String(), h.Addr))
			}
		}
		st.Circuits = append(st.Circuits, c)
	}
	st.Limits = limitValues(n.Limits())
	st.Counters = counterValues(n.Stats())
	st.Counters = append(st.Counters, discoveryValues(n)...)
	st.Counters = append(st.Counters, hiddenValues(n.HiddenStats())...)
	st.Counters = append(st.Counters, computeValues(n)...)
	st.Counters = append(st.Counters, siteValues(n)...)
	st.Counters = append(st.Counters, control.Value{Name: "reachability", Value: reachText(n)})
	st.Counters = append(st.Counters, natValues(n)...)
	return st
}

// hiddenValues are the counters of the hidden services a node publishes
// (summed; no address is shown) and of the ones it visited.
func hiddenValues(h overlay.HiddenStats) []control.Value {
	var v []control.Value
	add := func(name string, x any) { v = append(v, control.Value{Name: name, Value: fmt.Sprint(x)}) }
	add("hidden services published", len(h.Services))
	if len(h.Services) > 0 {
		sum := h.Sum()
		add("introduction points held", sum.Intros)
		add("descriptors stored", sum.Published)
		add("introductions received", sum.Introductions)
		add("introductions dropped", sum.Dropped)
		add("  of which replays", sum.Replays)
		add("rendezvous joined", sum.Rendezvous)
		add("streams accepted", sum.Streams)
		add("puzzle effort asked (highest)", sum.Effort)
	}
	add("hidden-service descriptors fetched", h.Client.Fetched)
	add("hidden-service rendezvous made", h.Client.Rendezvous)
	add("hidden-service streams on a joined circuit", h.Client.Reused)
	add("hidden-service introductions failed", h.Client.IntroFailures)
	return v
}

func limitValues(l overlay.Limits) []control.Value {
	var v []control.Value
	add := func(name string, x any) { v = append(v, control.Value{Name: name, Value: fmt.Sprint(x)}) }
	if l.Relay {
		add("max links", l.MaxLinks)
		add("max links per IP", l.MaxLinksPerIP)
		add("max handshakes", l.MaxHandshakes)
		add("max handshakes per IP", l.MaxHandshakesPerIP)
		add("CREATE rate per link (/s)", strconv.FormatFloat(l.CreateRate, 'g', -1, 64))
		add("CREATE burst per link", l.CreateBurst)
		add("max circuits", l.MaxCircuits)
		add("max circuits per link", l.MaxCircuitsPerLink)
		add("max circuits per IP", l.MaxCircuitsPerIP)
		add("directory answers in flight", l.DirMaxAnswers)
		add("directory answer window (cells)", l.DirAnswerWindow)
		add("directory answer timeout", l.DirAnswerTimeout)
		add("DIR_GET per link", fmt.Sprintf("burst %d, then 1 per %v", l.DirGetBurst, l.DirGetInterval))
	}
	add("memory budget", fmt.Sprintf("%d cells (%.0f MiB)", l.MemoryBudget, float64(l.MemoryBudget*cell.Size)/(1<<20)))
	add("max cells queued per circuit", l.MaxCircuitQueue)
	add("stall timeout", l.StallTimeout)
	return v
}

func counterValues(s overlay.Stats) []control.Value {
	var v []control.Value
	add := func(name string, x any) { v = append(v, control.Value{Name: name, Value: fmt.Sprint(x)}) }
	add("inbound links", s.Links.Inbound)
	add("handshakes in flight", s.Links.Handshakes)
	add("dials in flight", s.Links.Dials)
	add("links refused (max links)", s.Links.RefusedLinks)
	add("links refused (per IP)", s.Links.RefusedLinksPerIP)
	add("handshakes refused", s.Links.RefusedHandshakes+s.Links.RefusedHandshakesPerIP)
	add("handshakes failed", s.Links.FailedHandshakes)
	add("CREATE rate limited", s.Circuits.CreateRateLimited)
	add("CREATE refused", s.Circuits.CreateRefused)
	add("CREATE replays", s.Circuits.Replays)
	add("EXTEND refused", s.ExtendRefused)
	add("HELLO descriptors refused", s.HelloRefused)
	add("NAT messages refused", s.NATRefused)
	add("NAT messages malformed", s.NATMalformed)
	add("DIR_GET refused", s.Dir.GetsRefused)
	add("bad descriptors", s.Dir.Bad)
	add("cells queued", s.Budget.Queued)
	add("cells queued, peak", s.Budget.Peak)
	add("out-of-memory runs", s.Budget.Runs)
	add("circuits destroyed for memory", s.Budget.Circuits)
	add("introduction circuits", s.Circuits.IntroCircuits)
	add("INTRODUCE passed on", s.Circuits.Introduced)
	return v
}

// discoveryValues are the counters of gossip, admission, the DHT, guards
// and the learned build timeout.
func discoveryValues(n *overlay.Node) []control.Value {
	var v []control.Value
	add := func(name string, x any) { v = append(v, control.Value{Name: name, Value: fmt.Sprint(x)}) }
	d := n.Stats().Dir
	add("gossip bytes sent", d.GossipBytesSent)
	add("gossip bytes received", d.GossipBytesRecv)
	add("descriptors refused (subnet caps)", d.Admit.Subnet)
	add("descriptors refused (source limit)", d.Admit.Source)
	add("descriptors refused (directory full)", d.Admit.Full)
	add("descriptors evicted", d.Admit.Evicted)
	h := n.DHTStats()
	add("DHT lookups", fmt.Sprintf("%d (%d found)", h.Lookups, h.LookupsOK))
	add("DHT records stored", h.RecordsStored)
	p := n.Manager().PathStats()
	add("guard failures", p.GuardFailures)
	add("guards warned for failing circuits (bias)", p.PathBiasWarnings)
	bt := n.Manager().BuildTimeoutStats()
	add("circuit build timeout", fmt.Sprintf("%v (%d samples)", bt.Timeout, bt.Samples))
	return v
}

func printStatus(w io.Writer, st *control.Status) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "role:\t%s\n", st.Role)
	fmt.Fprintf(tw, "bootstrap:\t%d%%\t%s\n", st.Bootstrap, st.BootstrapMsg)
	fmt.Fprintf(tw, "relays known:\t%d\n", st.Relays)
	guards := "none"
	if len(st.Guards) > 0 {
		guards = strings.Join(st.Guards, ", ")
	}
	fmt.Fprintf(tw, "guards:\t%s\n", guards)
	fmt.Fprintf(tw, "links:\t%d\n", st.Links)
	fmt.Fprintf(tw, "circuits in the switch:\t%d\n", st.CircuitEnds)
	fmt.Fprintf(tw, "open circuits:\t%d\n", len(st.Circuits))
	for i, c := range st.Circuits {
		fmt.Fprintf(tw, "  circuit %d:\t%d hops, %d streams, age %s", i+1, c.Hops, c.Streams, c.Age)
		if len(c.Path) > 0 {
			fmt.Fprintf(tw, ", path %s", strings.Join(c.Path, " > "))
		}
		fmt.Fprintln(tw)
	}
	fmt.Fprintln(tw, "limits:")
	for _, v := range st.Limits {
		fmt.Fprintf(tw, "  %s:\t%s\n", v.Name, v.Value)
	}
	fmt.Fprintln(tw, "counters:")
	for _, v := range st.Counters {
		fmt.Fprintf(tw, "  %s:\t%s\n", v.Name, v.Value)
	}
	tw.Flush()
}

// startOperatorView serves node n's control socket under --data and, with
// --metrics, its metrics; the returned function stops both.
func startOperatorView(c *cli.Context, role string, n *overlay.Node, p *progress) (func(), error) {
	ctl, err := startControl(c.String("data"), func(req control.Request) *control.Status {
		return nodeStatus(role, n, p, req)
	})
	if err != nil {
		return nil, err
	}
	ms, err := startMetricsFlag(c, n, p)
	if err != nil {
		ctl.Close()
		return nil, err
	}
	return func() {
		ms.Close()
		ctl.Close()
	}, nil
}

// startControl serves the control socket in dir, answering with status.
func startControl(dir string, status func(control.Request) *control.Status) (*control.Server, error) {
	return control.Listen(dir, func(req control.Request) (*control.Status, error) { return status(req), nil })
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// reachText says what relays' STUN answers told of the node's address
// (spec/nat.md §2): public, behind a NAT of some kind, or unknown yet.
func reachText(n *overlay.Node) string {
	r, _, at := n.Reachability()
	switch {
	case at.IsZero():
		return "unknown (no STUN answer yet)"
	case r.Status == descriptor.ReachPublic:
		return "public"
	default:
		return fmt.Sprintf("behind NAT (mapping %s, filtering %s)", behaviorText(r.Mapping), behaviorText(r.Filtering))
	}
}

func behaviorText(b uint8) string {
	switch b {
	case descriptor.BehaviorEndpointIndependent:
		return "endpoint-independent"
	case descriptor.BehaviorAddressDependent:
		return "address-dependent"
	case descriptor.BehaviorAddressPortDepend:
		return "address-and-port-dependent"
	}
	return "unknown"
}

// natValues are the counters of relayed links and hole punching
// (spec/nat.md §8): the Hop service a public relay runs, the reservations
// of a relay behind NAT (how many, never where) and the punches made.
func natValues(n *overlay.Node) []control.Value {
	var v []control.Value
	add := func(name string, x any) { v = append(v, control.Value{Name: name, Value: fmt.Sprint(x)}) }
	h := n.HopStats()
	add("relayed links: reservations held for others", h.Reservations)
	add("relayed links: splices open", h.Splices)
	add("relayed links: splices made", h.Spliced)
	add("relayed links: bytes relayed", h.Bytes)
	add("relayed links: requests refused", h.Refused)
	add("relayed links: own reservations", len(n.RelayedAddrs()))
	p := n.PunchStats()
	add("hole punching: attempts", p.Attempts)
	add("hole punching: direct links made", p.Direct)
	add("hole punching: failed (link stays relayed)", p.Failed)
	return v
}
