package circuit

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// The guard file (spec/guards.md §6) keeps the guard sample across
// restarts: a JSON object, written whole to a temporary file that is
// then renamed over the old one, mode 0600.
const (
	// guardFileVersion is the version this code writes and reads.
	guardFileVersion = 1
	// maxGuardFile bounds the file read back, in bytes.
	maxGuardFile = 1 << 20
)

type guardFileJSON struct {
	Version int             `json:"version"`
	Guards  []guardFileItem `json:"guards"`
}

type guardFileItem struct {
	Identity      string    `json:"identity"` // hex Ed25519 public key
	Added         time.Time `json:"added"`
	SampleIdx     int64     `json:"sample_idx"`
	Confirmed     time.Time `json:"confirmed,omitzero"`
	ConfirmIdx    int64     `json:"confirm_idx,omitempty"`
	Provisional   bool      `json:"provisional,omitempty"`
	Pinned        bool      `json:"pinned,omitempty"`
	UnlistedSince time.Time `json:"unlisted_since,omitzero"`
	Failures      int       `json:"failures,omitempty"`
	FailingSince  time.Time `json:"failing_since,omitzero"`
	RetryAt       time.Time `json:"retry_at,omitzero"`
	Unreachable   bool      `json:"unreachable,omitempty"`
	Disabled      bool      `json:"disabled,omitempty"`
	PathBias      pathBias  `json:"path_bias"`
}

// marshal encodes the set for the guard file.
func (s *guardSet) marshal() []byte {
	f := guardFileJSON{Version: guardFileVersion, Guards: []guardFileItem{}}
	for _, g := range s.guards {
		f.Guards = append(f.Guards, guardFileItem{
			Identity: hex.EncodeToString(g.id[:]), Added: g.added, SampleIdx: g.sampleIdx,
			Confirmed: g.confirmed, ConfirmIdx: g.confirmIdx,
			Provisional: g.provisional, Pinned: g.pinned,
			UnlistedSince: g.unlistedSince, Failures: g.failures, FailingSince: g.failingSince,
			RetryAt: g.retryAt, Unreachable: g.unreachable, Disabled: g.disabled,
			PathBias: g.bias,
		})
	}
	// Only times in years 0..9999 fail to encode; the clock and the file
	// (RFC 3339) give no others.
	b, _ := json.MarshalIndent(f, "", "\t")
	return append(b, '\n')
}

// unmarshalGuards decodes a guard file into a set with params p. Guards
// beyond twice the sample size are dropped (the file is local, but a
// bound costs nothing).
func unmarshalGuards(b []byte, p GuardParams) (*guardSet, error) {
	var f guardFileJSON
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("circuit: guard file: %w", err)
	}
	if f.Version != guardFileVersion {
		return nil, fmt.Errorf("circuit: guard file version %d, this software reads version %d", f.Version, guardFileVersion)
	}
	s := newGuardSet(p)
	for i, it := range f.Guards {
		if len(s.guards) == 2*s.p.SampleSize {
			break
		}
		raw, err := hex.DecodeString(it.Identity)
		if err != nil || len(raw) != keys.PublicKeySize {
			return nil, fmt.Errorf("circuit: guard file: guard %d: bad identity", i)
		}
		if it.Failures < 0 {
			return nil, fmt.Errorf("circuit: guard file: guard %d: negative failure count", i)
		}
		g := &guard{
			added: it.Added, sampleIdx: it.SampleIdx, confirmed: it.Confirmed, confirmIdx: it.ConfirmIdx,
			provisional: it.Provisional, pinned: it.Pinned, unlistedSince: it.UnlistedSince,
			failures: it.Failures, failingSince: it.FailingSince, retryAt: it.RetryAt,
			unreachable: it.Unreachable, disabled: it.Disabled, bias: it.PathBias,
		}
		copy(g.id[:], raw)
		if s.find(g.id) != nil {
			return nil, fmt.Errorf("circuit: guard file: guard %d appears twice", i)
		}
		s.guards = append(s.guards, g)
		s.nextSample = max(s.nextSample, g.sampleIdx+1)
		if !g.confirmed.IsZero() {
			s.nextConfirm = max(s.nextConfirm, g.confirmIdx+1)
			s.firstPin = min(s.firstPin, g.confirmIdx-1)
		}
	}
	return s, nil
}

// loadGuards reads the guard file at path; a missing file gives an empty
// set.
func loadGuards(path string, p GuardParams) (*guardSet, error) {
	if path == "" {
		return newGuardSet(p), nil
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return newGuardSet(p), nil
	}
	if err != nil {
		return nil, fmt.Errorf("circuit: guard file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxGuardFile+1))
	if err != nil {
		return nil, fmt.Errorf("circuit: guard file: %w", err)
	}
	if len(b) > maxGuardFile {
		return nil, fmt.Errorf("circuit: guard file larger than %d bytes", maxGuardFile)
	}
	return unmarshalGuards(b, p)
}
