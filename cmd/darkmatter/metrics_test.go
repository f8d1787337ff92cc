package main

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scrape fetches url and returns its samples by "name{labels}".
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	cl := &http.Client{Timeout: 10 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s", resp.Status)
	}
	samples := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample %q: %v", line, err)
		}
		samples[line[:i]] = v
	}
	return samples
}

// The metrics endpoint of a testnet's client serves its links, circuits,
// relays known, budget and refusal counters.
func TestMetricsTestnet(t *testing.T) {
	e := newEnv(t)
	c, err := socksDial(e.fe.socksAddr, atypIPv4, "127.0.0.1", e.originPort, "", "")
	if err != nil {
		t.Fatal(err)
	}
	getPage(t, c, e.origin)
	c.Close()
	m, err := startMetrics("127.0.0.1:0", false, e.tn.Client, e.tn.progress)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s := scrape(t, "http://"+m.Addr+"/metrics")
	for name, ok := range map[string]func(float64) bool{
		"darkmatter_relays_known":                                    func(v float64) bool { return v == 5 },
		"darkmatter_links":                                           func(v float64) bool { return v >= 1 },
		`darkmatter_circuits{kind="client"}`:                         func(v float64) bool { return v >= 1 },
		"darkmatter_bootstrap_percent":                               func(v float64) bool { return v == 100 },
		"darkmatter_budget_max_cells":                                func(v float64) bool { return v == 65536 },
		"darkmatter_budget_queued_cells":                             func(v float64) bool { return v >= 0 },
		`darkmatter_refused_total{kind="create_rate"}`:               func(v float64) bool { return v == 0 },
		`darkmatter_refused_total{kind="links_per_ip"}`:              func(v float64) bool { return v == 0 },
		`darkmatter_gossip_bytes_total{direction="received"}`:        func(v float64) bool { return v > 0 },
		`darkmatter_guards{kind="primary"}`:                          func(v float64) bool { return v >= 1 && v <= 3 },
		"darkmatter_circuit_build_timeout_seconds":                   func(v float64) bool { return v > 0 },
		`darkmatter_hidden_services{kind="services"}`:                func(v float64) bool { return v == 0 },
		`darkmatter_hidden_service_client_total{kind="descriptors"}`: func(v float64) bool { return v == 0 },
		"darkmatter_intro_circuits":                                  func(v float64) bool { return v == 0 },
		`darkmatter_calls_total{result="all"}`:                       func(v float64) bool { return v == 0 },
		`darkmatter_site_files_total{kind="hosts"}`:                  func(v float64) bool { return v == 0 },
		"darkmatter_sites_hosted":                                    func(v float64) bool { return v == 0 },
	} {
		v, found := s[name]
		if !found || !ok(v) {
			t.Errorf("%s = %v (present %v)", name, v, found)
		}
	}
}

// An executor relay's --metrics show its executor's counters.
func TestMetricsExecutor(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tn, err := startTestnet(ctx, testnetOptions{Network: "t", Relays: 3, Executors: true, CacheDir: t.TempDir(), Info: testLogf(t, "testnet: ")})
	if err != nil {
		t.Fatal(err)
	}
	defer tn.Close()
	m, err := startMetrics("127.0.0.1:0", false, tn.Relays[0], tn.progress)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s := scrape(t, "http://"+m.Addr+"/metrics")
	for _, name := range []string{"darkmatter_executor_running", `darkmatter_executor_calls_total{result="ok"}`,
		`darkmatter_executor_modules{kind="bytes"}`, `darkmatter_executor_fetched_total{kind="module_dht"}`} {
		if v, found := s[name]; !found || v < 0 {
			t.Errorf("%s = %v (present %v)", name, v, found)
		}
	}
	if _, found := s[`darkmatter_calls_total{result="all"}`]; !found {
		t.Error("no call counters")
	}
}

// --metrics listens on loopback only unless told otherwise.
func TestMetricsLoopbackOnly(t *testing.T) {
	e := newEnv(t)
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:9100", "example.com:9100"} {
		if m, err := startMetrics(addr, false, e.tn.Client, e.tn.progress); err == nil {
			m.Close()
			t.Errorf("%s accepted without --metrics-allow-remote", addr)
		} else if !strings.Contains(err.Error(), "--metrics-allow-remote") {
			t.Errorf("%s: %v, want it to name --metrics-allow-remote", addr, err)
		}
	}
	m, err := startMetrics("127.0.0.1:0", true, e.tn.Client, e.tn.progress)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	// The command refuses it before starting anything.
	_, err = runApp(t, "testnet", "--data", t.TempDir(), "--metrics", "0.0.0.0:9100", "--log-level", "quiet")
	if err == nil || !strings.Contains(err.Error(), "--metrics-allow-remote") {
		t.Errorf("testnet --metrics 0.0.0.0:9100: %v", err)
	}
}
