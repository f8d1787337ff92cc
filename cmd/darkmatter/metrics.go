package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/overlay"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/urfave/cli/v2"
)

// metricsFlags are the Prometheus flags of the commands that run a node.
func metricsFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "metrics", Usage: "serve Prometheus metrics on http://ADDR/metrics (HOST:PORT, loopback only; empty: off)"},
		&cli.BoolFlag{Name: "metrics-allow-remote", Usage: "let --metrics listen on a non-loopback address (the counters tell an observer about the node's traffic)"},
	}
}

// metricsServer serves a node's metrics over HTTP.
type metricsServer struct {
	Addr string
	srv  *http.Server
	wg   sync.WaitGroup
}

// startMetricsFlag starts the metrics server if --metrics is set (nil
// otherwise).
func startMetricsFlag(c *cli.Context, n *overlay.Node, p *progress) (*metricsServer, error) {
	if c.String("metrics") == "" {
		return nil, nil
	}
	m, err := startMetrics(c.String("metrics"), c.Bool("metrics-allow-remote"), n, p)
	if err != nil {
		return nil, fmt.Errorf("--metrics: %w", err)
	}
	say("metrics on http://%s/metrics", m.Addr)
	return m, nil
}

// startMetrics listens on addr, a loopback address unless allowRemote, and
// serves n's metrics at /metrics.
func startMetrics(addr string, allowRemote bool, n *overlay.Node, p *progress) (*metricsServer, error) {
	if err := checkMetricsAddr(addr, allowRemote); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if ta, ok := ln.Addr().(*net.TCPAddr); !allowRemote && (!ok || !ta.IP.IsLoopback()) {
		ln.Close()
		return nil, fmt.Errorf("%s listens on %s, not loopback", addr, ln.Addr())
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(&nodeCollector{n: n, p: p})
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	m := &metricsServer{Addr: ln.Addr().String(), srv: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       time.Minute,
	}}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		_ = m.srv.Serve(ln)
	}()
	return m, nil
}

// checkMetricsAddr refuses an address that is not loopback unless
// allowRemote.
func checkMetricsAddr(addr string, allowRemote bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if !allowRemote && !isLoopbackHost(host) {
		return fmt.Errorf("%s is not a loopback address (use --metrics-allow-remote to allow it)", addr)
	}
	return nil
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Close stops the server. It is safe on a nil server.
func (m *metricsServer) Close() error {
	if m == nil {
		return nil
	}
	err := m.srv.Close()
	m.wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// nodeCollector reads a node's gauges and counters at each scrape.
type nodeCollector struct {
	n *overlay.Node
	p *progress
}

var (
	descLinks     = prometheus.NewDesc("darkmatter_links", "Open links.", nil, nil)
	descCircuits  = prometheus.NewDesc("darkmatter_circuits", "Open circuits: this node's own (client) and all ends in its circuit switch (switch).", []string{"kind"}, nil)
	descRelays    = prometheus.NewDesc("darkmatter_relays_known", "Relays in the node's directory.", nil, nil)
	descBootstrap = prometheus.NewDesc("darkmatter_bootstrap_percent", "Bootstrap progress, 0 to 100.", nil, nil)
	descQueued    = prometheus.NewDesc("darkmatter_budget_queued_cells", "Cells queued on all the node's links.", nil, nil)
	descBudget    = prometheus.NewDesc("darkmatter_budget_max_cells", "The memory budget, in cells.", nil, nil)
	descOOM       = prometheus.NewDesc("darkmatter_budget_oom_runs_total", "Runs of the out-of-memory handler.", nil, nil)
	descOOMCircs  = prometheus.NewDesc("darkmatter_budget_oom_circuits_total", "Circuits destroyed by the out-of-memory handler.", nil, nil)
	descRefused   = prometheus.NewDesc("darkmatter_refused_total", "Requests refused at a limit or by a rule, by kind (spec/limits.md).", []string{"kind"}, nil)
	descGossip    = prometheus.NewDesc("darkmatter_gossip_bytes_total", "Directory gossip bytes, by direction.", []string{"direction"}, nil)
	descDHTLookup = prometheus.NewDesc("darkmatter_dht_lookups_total", "DHT lookups, and those that found what they looked for.", []string{"result"}, nil)
	descDHTStored = prometheus.NewDesc("darkmatter_dht_records_stored", "DHT records this node stores for others.", nil, nil)
	descGuards    = prometheus.NewDesc("darkmatter_guards", "Guards in the sample, and the primary ones.", []string{"kind"}, nil)
	descBuildTO   = prometheus.NewDesc("darkmatter_circuit_build_timeout_seconds", "The circuit build timeout learned from observed build times.", nil, nil)
	descIntro     = prometheus.NewDesc("darkmatter_intro_circuits", "Introduction circuits of hidden services held at this relay.", nil, nil)
	descIntroPass = prometheus.NewDesc("darkmatter_introduce_total", "INTRODUCE1 at this relay, by outcome.", []string{"result"}, nil)
	descHS        = prometheus.NewDesc("darkmatter_hidden_services", "Hidden services this node publishes, and their introduction points.", []string{"kind"}, nil)
	descHSIntro   = prometheus.NewDesc("darkmatter_hidden_service_introductions_total", "Introductions received by this node's hidden services, by outcome.", []string{"result"}, nil)
	descHSEffort  = prometheus.NewDesc("darkmatter_hidden_service_effort", "The highest puzzle effort this node's hidden services ask for.", nil, nil)
	descHSClient  = prometheus.NewDesc("darkmatter_hidden_service_client_total", "This node's visits to hidden services: descriptors fetched, rendezvous made, failed introductions.", []string{"kind"}, nil)
	descExecCalls = prometheus.NewDesc("darkmatter_executor_calls_total", "Delegated calls this executor answered, by outcome (busy and malformed are failures too).", []string{"result"}, nil)
	descExecRun   = prometheus.NewDesc("darkmatter_executor_running", "Delegated calls this executor runs now.", nil, nil)
	descExecMods  = prometheus.NewDesc("darkmatter_executor_modules", "Modules this executor holds, and their bytes.", []string{"kind"}, nil)
	descExecFetch = prometheus.NewDesc("darkmatter_executor_fetched_total", "What this executor fetched: modules from the DHT or from requesters, data sources, sub-calls delegated.", []string{"kind"}, nil)
	descSiteFiles = prometheus.NewDesc("darkmatter_site_files_total", "Site files this node's visits got, by source (cache, hosts, dht), and tampered blobs from hosts it rejected.", []string{"kind"}, nil)
	descSiteCalls = prometheus.NewDesc("darkmatter_site_handler_calls_total", "Site handlers this node ran as delegated calls, and those that failed.", []string{"result"}, nil)
	descSitesHost = prometheus.NewDesc("darkmatter_sites_hosted", "Sites this node hosts.", nil, nil)
	descSiteSyncs = prometheus.NewDesc("darkmatter_site_syncs_total", "Manifests this host took, and those it could not.", []string{"result"}, nil)
	descCalls     = prometheus.NewDesc("darkmatter_calls_total", "Delegated calls and sub-calls this node made, those with an output, and retries on another executor.", []string{"result"}, nil)
)

func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLinks, descCircuits, descRelays, descBootstrap, descQueued, descBudget, descOOM, descOOMCircs, descRefused,
		descGossip, descDHTLookup, descDHTStored, descGuards, descBuildTO, descIntro, descIntroPass, descHS, descHSIntro, descHSEffort, descHSClient,
		descExecCalls, descExecRun, descExecMods, descExecFetch, descCalls, descSiteFiles, descSiteCalls, descSitesHost, descSiteSyncs} {
		ch <- d
	}
}

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	s := c.n.Stats()
	pct, _ := c.p.get()
	gauge(descLinks, float64(c.n.Links()))
	gauge(descCircuits, float64(c.n.ClientCircuits()), "client")
	gauge(descCircuits, float64(c.n.CircuitEnds()), "switch")
	gauge(descRelays, float64(len(c.n.Relays())))
	gauge(descBootstrap, float64(pct))
	gauge(descQueued, float64(s.Budget.Queued))
	gauge(descBudget, float64(s.Budget.Max))
	counter(descOOM, s.Budget.Runs)
	counter(descOOMCircs, s.Budget.Circuits)
	for _, r := range []struct {
		kind string
		v    uint64
	}{
		{"links", s.Links.RefusedLinks},
		{"links_per_ip", s.Links.RefusedLinksPerIP},
		{"handshakes", s.Links.RefusedHandshakes},
		{"handshakes_per_ip", s.Links.RefusedHandshakesPerIP},
		{"handshake_failed", s.Links.FailedHandshakes},
		{"create_rate", s.Circuits.CreateRateLimited},
		{"create", s.Circuits.CreateRefused},
		{"create_replay", s.Circuits.Replays},
		{"extend", s.ExtendRefused},
		{"hello_descriptor", s.HelloRefused},
		{"nat_message", s.NATRefused},
		{"nat_malformed", s.NATMalformed},
		{"dir_get", s.Dir.GetsRefused},
		{"bad_descriptor", s.Dir.Bad},
		{"descriptor_subnet", s.Dir.Admit.Subnet},
		{"descriptor_source", s.Dir.Admit.Source},
		{"descriptor_full", s.Dir.Admit.Full},
		{"gossip", s.Dir.GossipRefused},
	} {
		counter(descRefused, r.v, r.kind)
	}
	counter(descGossip, s.Dir.GossipBytesSent, "sent")
	counter(descGossip, s.Dir.GossipBytesRecv, "received")
	h := c.n.DHTStats()
	counter(descDHTLookup, h.Lookups, "all")
	counter(descDHTLookup, h.LookupsOK, "found")
	gauge(descDHTStored, float64(h.RecordsStored))
	gs := c.n.Manager().Guards()
	prim := 0
	for _, g := range gs {
		if g.Primary {
			prim++
		}
	}
	gauge(descGuards, float64(len(gs)), "sampled")
	gauge(descGuards, float64(prim), "primary")
	gauge(descBuildTO, c.n.Manager().BuildTimeoutStats().Timeout.Seconds())
	gauge(descIntro, float64(s.Circuits.IntroCircuits))
	counter(descIntroPass, s.Circuits.Introduced, "passed")
	counter(descIntroPass, s.Circuits.IntroRateLimited, "rate_limited")
	counter(descIntroPass, s.Circuits.IntroUnknown, "unknown_key")
	hs := c.n.HiddenStats()
	sum := hs.Sum()
	gauge(descHS, float64(len(hs.Services)), "services")
	gauge(descHS, float64(sum.Intros), "intro_points")
	counter(descHSIntro, sum.Introductions, "received")
	counter(descHSIntro, sum.Dropped, "dropped")
	counter(descHSIntro, sum.Rendezvous, "rendezvous")
	gauge(descHSEffort, float64(sum.Effort))
	counter(descHSClient, hs.Client.Fetched, "descriptors")
	counter(descHSClient, hs.Client.Rendezvous, "rendezvous")
	counter(descHSClient, hs.Client.IntroFailures, "intro_failures")
	ss := c.n.SiteClient().Stats()
	counter(descSiteFiles, ss.CacheHits, "cache")
	counter(descSiteFiles, ss.FromHosts, "hosts")
	counter(descSiteFiles, ss.DHTFetches, "dht")
	counter(descSiteFiles, ss.Tampered, "tampered")
	counter(descSiteCalls, ss.HandlerCalls, "all")
	counter(descSiteCalls, ss.HandlerErrors, "failed")
	hst := c.n.SiteStats()
	gauge(descSitesHost, float64(hst.Hosted))
	counter(descSiteSyncs, hst.Syncs, "ok")
	counter(descSiteSyncs, hst.SyncFails, "failed")
	cs := c.n.CallStats()
	counter(descCalls, cs.Calls, "all")
	counter(descCalls, cs.OK, "ok")
	counter(descCalls, cs.Retries, "retries")
	if ex := c.n.Executor(); ex != nil {
		es := ex.Stats()
		counter(descExecCalls, es.OK, "ok")
		counter(descExecCalls, es.Failed, "failed")
		counter(descExecCalls, es.Busy, "busy")
		counter(descExecCalls, es.Malformed, "malformed")
		gauge(descExecRun, float64(es.Running))
		gauge(descExecMods, float64(es.Modules), "modules")
		gauge(descExecMods, float64(es.Bytes), "bytes")
		counter(descExecFetch, es.FromDHT, "module_dht")
		counter(descExecFetch, es.FromAsker, "module_requester")
		counter(descExecFetch, es.Sources, "data_source")
		counter(descExecFetch, es.SubCalls, "sub_call")
	}
}
