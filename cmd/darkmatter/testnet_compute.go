package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/darkmatter/darkmatter/apps/compute/examples/prebuilt"
	"github.com/darkmatter/darkmatter/apps/compute/executor"
	"github.com/darkmatter/darkmatter/apps/compute/manifest"
	"github.com/darkmatter/darkmatter/overlay"
	"github.com/darkmatter/darkmatter/overlay/dht"
)

// The testnet's delegated calls: every relay is an executor, and the
// testnet publishes the three example modules (apps/compute/examples/
// prebuilt) at start, signed by DATA/demo-author.key.

// setTestnetExecutor makes a testnet relay an executor. The whole network
// is a handful of nodes on loopback: a module's hundred-odd chunks go to
// the same few DHT nodes at once, from the same few peers, so the DHT's
// per-peer limits are raised as the overlay's compute tests raise them.
func setTestnetExecutor(cfg *overlay.Config, cacheDir string) {
	cfg.Executor = &overlay.ExecutorConfig{Policy: executor.Policy{Timeout: time.Minute}, CompileCacheDir: cacheDir}
	cfg.DHTLimits = dht.StoreLimits{StoresPerMinute: 60000, StoreBurst: 10000, MaxPerOwner: 4096}
	cfg.DHTRequestRate, cfg.DHTRequestBurst = 5000, 10000
}

// demoCreated is the demo manifests' creation time: with the key kept in
// DATA, the signed manifests are the same at every start.
var demoCreated = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Unix()

// demoModules are the hashes of the published demo modules.
type demoModules struct {
	WordCount, FanOut, Render [32]byte
}

func (d *demoModules) hex() map[string]string {
	return map[string]string{
		"wordcount": hex.EncodeToString(d.WordCount[:]),
		"fanout":    hex.EncodeToString(d.FanOut[:]),
		"render":    hex.EncodeToString(d.Render[:]),
	}
}

// publishModules publishes the three example modules from the testnet's
// client, signed by the author key in keyFile (created on first use).
func (tn *testnet) publishModules(ctx context.Context, keyFile string) (*demoModules, error) {
	author, err := loadOrCreateIdentity(keyFile)
	if err != nil {
		return nil, err
	}
	limits := manifest.Limits{MemoryPages: executor.DefaultMemoryPages, TimeoutMS: 60000, MaxOutput: 1 << 20}
	pub := func(code []byte, perms manifest.Permissions, fns ...string) ([32]byte, error) {
		m := &manifest.Manifest{Functions: fns, Permissions: perms, Limits: limits, Created: demoCreated}
		if perms&manifest.PermSubCalls != 0 {
			m.Limits.MaxDepth, m.Limits.MaxFanOut = 4, 8
		}
		_, err := tn.Client.PublishModule(ctx, code, m, author)
		return m.ModuleHash, err
	}
	var d demoModules
	if d.WordCount, err = pub(prebuilt.WordCount(), 0, "count"); err != nil {
		return nil, fmt.Errorf("wordcount: %w", err)
	}
	if d.FanOut, err = pub(prebuilt.FanOut(), manifest.PermSubCalls, "count"); err != nil {
		return nil, fmt.Errorf("fanout: %w", err)
	}
	if d.Render, err = pub(prebuilt.Render(), manifest.PermDataSources, "page", "blob"); err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	return &d, nil
}

// demoFanOutText is the text of the printed fan-out example (words only:
// it goes through printf).
const demoFanOutText = "one two three four five six seven eight nine ten eleven twelve"

// callLines are the ready-to-paste darkmatter call lines for the demo
// modules, from another shell: the flags reach this testnet (its first
// relay, its network, the loopback allowances) with a client data
// directory of their own.
func (d *demoModules) callLines(tn *testnet, clientData string) []string {
	flags := strings.Join([]string{
		"--bootstrap", tn.boot[0].String(),
		"--network", shellQuote(tn.network),
		"--allow-same-subnet", "--guard-min-age", "0s", "--dht-min-age", "0s",
		"--data", shellQuote(clientData),
	}, " ")
	wc := hex.EncodeToString(d.WordCount[:])
	fo := hex.EncodeToString(d.FanOut[:])
	return []string{
		fmt.Sprintf("word count on an executor; try: darkmatter call %s count --input \"hello dark world\" %s", wc, flags),
		fmt.Sprintf("fan-out over 4 executors; try: darkmatter call %s count --input \"$(printf '%s\\n%s')\" %s", fo, wc, demoFanOutText, flags),
	}
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:@,=+", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
