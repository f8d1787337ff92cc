package sim

import (
	"fmt"
	"io"
	"math"
	"text/tabwriter"
	"time"
)

// WriteReport prints the tables of one run.
func WriteReport(w io.Writer, cfg Config, r *Result) {
	cfg.setDefaults()
	g := &r.Gossip
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "N = %d relays\n", r.Nodes)
	fmt.Fprintf(tw, "gossip\tfanout %d, rounds of %s, per-source limit %d\n", cfg.Fanout, GossipInterval, g.PerSource)
	status := "yes"
	switch {
	case g.Stalled:
		status = fmt.Sprintf("no: stalled (%d rounds each taught < 0.1%% of the pairs)", cfg.StallRounds)
	case !g.Converged:
		status = fmt.Sprintf("no: stopped after %d rounds", cfg.MaxRounds)
	}
	fmt.Fprintf(tw, "  converged\t%s\n", status)
	fmt.Fprintf(tw, "  time to converge\t%d rounds = %s simulated (wall %s, CPU %s)\n", g.Rounds, g.SimTime, round(g.Wall), round(g.CPU))
	if len(g.Coverage) > 0 {
		last := len(g.Coverage) - 1
		fmt.Fprintf(tw, "  pairs known\tround 1: %.2f%%, end: %.2f%%; relays knowing all at the end: %.2f%%\n",
			100*g.Coverage[0], 100*g.Coverage[last], 100*g.Complete[last])
		fmt.Fprintf(tw, "  rounds to 50/90/99/100%% pairs\t%s / %s / %s / %s\n",
			roundsTo(g.Coverage, 0.5), roundsTo(g.Coverage, 0.9), roundsTo(g.Coverage, 0.99), roundsTo(g.Coverage, 1))
	}
	fmt.Fprintf(tw, "  bytes sent per relay\t%s\n", bytesDist(g.BytesSent))
	fmt.Fprintf(tw, "  bytes received per relay\t%s\n", bytesDist(g.BytesRecv))
	fmt.Fprintf(tw, "  HELLO bytes per relay\t%s\n", bytesDist(g.HelloBytes))
	fmt.Fprintf(tw, "  links, syncs (failed)\t%d, %d (%d)\n", g.Links, g.Syncs, g.SyncErrors)
	fmt.Fprintf(tw, "  descriptors received\t%d, refused %d (%d by the per-source limit)\n", g.Received, g.Refused, g.SourceRefused)
	fmt.Fprintf(tw, "  Go heap in use\t%.0f MiB\n", g.HeapMiB)
	d := &r.DHT
	if d.Lookups > 0 || d.Records > 0 {
		fmt.Fprintf(tw, "dht\tk=20, α=3, 4 disjoint paths; churn: %d left, %d joined (%d live)\n", d.Left, d.Joined, d.Live)
		fmt.Fprintf(tw, "  records put\t%d, replicas %s, failed %d\n", d.Records, numDist(d.Replicas, "%.0f"), d.PutFailed)
		fmt.Fprintf(tw, "  maintenance round\t%d requests (%.0f per live node)\n", d.MaintainRequests, float64(d.MaintainRequests)/float64(max(d.Live, 1)))
		fmt.Fprintf(tw, "  lookups found\t%d of %d (%.2f%%)\n", d.Found, d.Lookups, 100*d.Success)
		fmt.Fprintf(tw, "  hops per lookup\t%s\n", numDist(d.Hops, "%.2f"))
		fmt.Fprintf(tw, "  requests per lookup\t%s\n", numDist(d.Requests, "%.1f"))
		fmt.Fprintf(tw, "  bytes per lookup\t%s\n", bytesDist(d.Bytes))
		fmt.Fprintf(tw, "  latency, model (hops × %s)\t%s\n", d.RTT, numDist(d.ModelMs, "%.0f ms"))
		fmt.Fprintf(tw, "  latency, in-process\t%s\n", numDist(d.WallMs, "%.2f ms"))
		fmt.Fprintf(tw, "  routing table\t%s contacts\n", numDist(d.Table, "%.0f"))
		fmt.Fprintf(tw, "  refusals\t%d STOREs over the rate, %d other\n", d.StoresRate, d.Refused)
		fmt.Fprintf(tw, "  experiment time\twall %s, CPU %s\n", round(d.Wall), round(d.CPU))
	}
	tw.Flush()
}

// WriteGrowth prints how the figures grow with N over runs of increasing
// size, and the ratio of each to the previous run's.
func WriteGrowth(w io.Writer, rs []*Result) {
	if len(rs) < 2 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "N\trounds\tpairs known\tsent/relay\trecv/relay\tlookup ok\thops\treq/lookup\tmodel p50\t")
	for i, r := range rs {
		g, d := &r.Gossip, &r.DHT
		cov := 0.0
		if len(g.Coverage) > 0 {
			cov = g.Coverage[len(g.Coverage)-1]
		}
		fmt.Fprintf(tw, "%d\t%d\t%.2f%%\t%s\t%s\t%.2f%%\t%.2f\t%.1f\t%.0f ms\t\n", r.Nodes, g.Rounds, 100*cov,
			fmtBytes(g.BytesSent.Mean), fmtBytes(g.BytesRecv.Mean), 100*d.Success, d.Hops.Mean, d.Requests.Mean, d.ModelMs.P50)
		if i == 0 {
			continue
		}
		p, pg, pd := rs[i-1], &rs[i-1].Gossip, &rs[i-1].DHT
		fmt.Fprintf(tw, "×%.1f N\t%s\t\t%s\t%s\t\t%s\t%s\t\t\n", float64(r.Nodes)/float64(p.Nodes),
			ratio(float64(g.Rounds), float64(pg.Rounds)), ratio(g.BytesSent.Mean, pg.BytesSent.Mean),
			ratio(g.BytesRecv.Mean, pg.BytesRecv.Mean), ratio(d.Hops.Mean, pd.Hops.Mean), ratio(d.Requests.Mean, pd.Requests.Mean))
	}
	tw.Flush()
}

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("×%.2f", a/b)
}

func roundsTo(cov []float64, f float64) string {
	for i, c := range cov {
		if c >= f-1e-12 {
			return fmt.Sprint(i + 1)
		}
	}
	return "-"
}

func numDist(d Dist, f string) string {
	return fmt.Sprintf("mean "+f+", p50 "+f+", p99 "+f+", max "+f, d.Mean, d.P50, d.P99, d.Max)
}

func bytesDist(d Dist) string {
	return fmt.Sprintf("mean %s, p50 %s, p99 %s, max %s", fmtBytes(d.Mean), fmtBytes(d.P50), fmtBytes(d.P99), fmtBytes(d.Max))
}

// fmtBytes writes n with a decimal unit (kB, MB, GB).
func fmtBytes(n float64) string {
	switch a := math.Abs(n); {
	case a >= 1e9:
		return fmt.Sprintf("%.2f GB", n/1e9)
	case a >= 1e6:
		return fmt.Sprintf("%.2f MB", n/1e6)
	case a >= 1e3:
		return fmt.Sprintf("%.1f kB", n/1e3)
	}
	return fmt.Sprintf("%.0f B", n)
}

func round(d time.Duration) time.Duration { return d.Round(10 * time.Millisecond) }
