package overlay

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/darkmatter/darkmatter/internal/atomicfile"
)

// What a node keeps under Config.StateDir (spec/gossip.md §7), so that a
// restart is usable at once, without a full bootstrap:
const (
	// relaysFile is the directory: every relay descriptor with its first
	// seen time and reliability (dir.Directory.Save).
	relaysFile = "relays.dat"
	// guardsFile is the guard sample (circuit.ManagerConfig.GuardFile).
	guardsFile = "guards.json"
	// buildTimesFile are the circuit build times the build timeout is
	// learned from: "DMBT", version 1, count (4), then count × 4-byte
	// milliseconds, all big-endian.
	buildTimesFile = "buildtimes.dat"
)

// maxStateFile bounds a state file read at start.
const maxStateFile = 64 << 20

// stateSaveInterval is how often a running node saves its state.
const stateSaveInterval = 10 * time.Minute

func (n *Node) statePath(name string) string {
	if n.cfg.StateDir == "" {
		return ""
	}
	return filepath.Join(n.cfg.StateDir, name)
}

// loadState reads the relay list saved by an earlier run; a missing file is
// no error, a damaged one is logged and ignored (the node bootstraps).
func (n *Node) loadState() {
	p := n.statePath(relaysFile)
	if p == "" {
		return
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		n.logf.Printf("overlay: reading the saved relay list: %v", err)
		return
	}
	defer f.Close()
	k, err := n.dir.Load(io.LimitReader(f, maxStateFile))
	if err != nil {
		n.logf.Printf("overlay: the saved relay list is damaged (%v); bootstrapping instead", err)
		return
	}
	n.logf.Printf("overlay: %d relays from the saved relay list", k)
}

// saveState writes the relay list and build times, each through a
// temporary file renamed into place, mode 0600.
func (n *Node) saveState() error {
	if n.cfg.StateDir == "" {
		return nil
	}
	if err := os.MkdirAll(n.cfg.StateDir, 0o700); err != nil {
		return err
	}
	var b bytes.Buffer
	if err := n.dir.Save(&b); err != nil {
		return err
	}
	if err := atomicfile.Write(n.statePath(relaysFile), b.Bytes(), 0o600); err != nil {
		return err
	}
	return atomicfile.Write(n.statePath(buildTimesFile), encodeBuildTimes(n.mgr.BuildTimes()), 0o600)
}

const buildTimesMagic = "DMBT\x01"

func encodeBuildTimes(ts []time.Duration) []byte {
	b := append([]byte(buildTimesMagic), 0, 0, 0, 0)
	binary.BigEndian.PutUint32(b[len(buildTimesMagic):], uint32(len(ts)))
	for _, t := range ts {
		b = binary.BigEndian.AppendUint32(b, uint32(min(t.Milliseconds(), 1<<32-1)))
	}
	return b
}

// maxBuildTimes bounds the build times read back.
const maxBuildTimes = 1000

func decodeBuildTimes(b []byte) ([]time.Duration, error) {
	h := len(buildTimesMagic)
	if len(b) < h+4 || string(b[:h]) != buildTimesMagic {
		return nil, errors.New("overlay: not a build times file")
	}
	k := binary.BigEndian.Uint32(b[h:])
	if k > maxBuildTimes || len(b) != h+4+4*int(k) {
		return nil, fmt.Errorf("overlay: build times file of %d bytes for %d times", len(b), k)
	}
	ts := make([]time.Duration, k)
	for i := range ts {
		ts[i] = time.Duration(binary.BigEndian.Uint32(b[h+4+4*i:])) * time.Millisecond
	}
	return ts, nil
}

// loadBuildTimes reads the saved build times; nil if there are none.
func loadBuildTimes(cfg Config) []time.Duration {
	if cfg.StateDir == "" {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(cfg.StateDir, buildTimesFile))
	if err != nil {
		return nil
	}
	ts, err := decodeBuildTimes(b)
	if err != nil {
		cfg.Logf.Printf("%v", err)
		return nil
	}
	return ts
}

// stateLoop saves the state every stateSaveInterval.
func (n *Node) stateLoop() {
	t := time.NewTicker(stateSaveInterval)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
			if err := n.saveState(); err != nil {
				n.logf.Printf("overlay: saving state: %v", err)
			}
		}
	}
}
