package circuit

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// The guard sample survives a restart: the file is written with mode 0600
// when the guards change, and a new Manager reading it keeps the same
// guards in the same order, with their state; a guard missing from the
// relay list is kept but not used until it returns.
func TestGuardFilePersists(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		file := filepath.Join(dir, "guards.json")
		relays := guardRelays(10, 4)
		b := newFakeBuilder()
		m1, err := NewManager(ManagerConfig{Builder: b, Relays: func() []RelayInfo { return relays }, GuardFile: file})
		if err != nil {
			t.Fatal(err)
		}
		var k keyer
		dial(t, m1, "example.com:80", k.next())
		fi, err := os.Stat(file)
		if err != nil {
			t.Fatalf("no guard file after the first circuit: %v", err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("guard file mode %v, want 0600", fi.Mode().Perm())
		}
		g1 := *m1.Guard()
		// One failure at the guard, and a circuit through the next one.
		b.setFail(relayOf(t, relays, g1.Identity), true)
		dial(t, m1, "example.com:80", k.next())
		b.setFail(relayOf(t, relays, g1.Identity), false)
		before := m1.Guards()
		m1.Close()
		if left, _ := filepath.Glob(filepath.Join(dir, ".guards.json.tmp*")); len(left) != 0 {
			t.Fatalf("temporary files left: %v", left)
		}

		// Restart, with the first guard missing from the relay list.
		listed := slices.DeleteFunc(slices.Clone(relays), func(r RelayInfo) bool { return r.Hop.Identity == g1.Identity })
		m2, err := NewManager(ManagerConfig{Builder: b, Relays: func() []RelayInfo { return listed }, GuardFile: file})
		if err != nil {
			t.Fatal(err)
		}
		defer m2.Close()
		after := m2.Guards()
		if len(after) != len(before) {
			t.Fatalf("%d guards after the restart, want %d", len(after), len(before))
		}
		for i := range before {
			x, y := before[i], after[i]
			if x.Identity != y.Identity || x.Confirmed != y.Confirmed || x.Failures != y.Failures ||
				x.Circuits != y.Circuits || x.Built != y.Built || x.Provisional != y.Provisional {
				t.Fatalf("guard %d differs after the restart:\n%+v\n%+v", i, x, y)
			}
		}
		dial(t, m2, "example.com:80", k.next())
		gi := guardInfo(t, m2, g1.Identity)
		if gi.Listed || gi.Usable {
			t.Fatalf("an unlisted guard after the restart: %+v, want kept but unusable", gi)
		}
		if g := m2.Guard(); g == nil || g.Identity != before[1].Identity {
			t.Fatal("after the restart, circuits do not go through the next guard of the saved order")
		}
		// It returns: first again.
		listed = relays
		time.Sleep(downTime)
		dial(t, m2, "example.com:80", k.next())
		if g := m2.Guard(); g == nil || g.Identity != g1.Identity {
			t.Fatal("the saved first guard is not first again once listed")
		}
	})
}

// A guard file that does not parse, or has another version, stops
// NewManager with an error naming the problem; a missing one is an empty
// sample.
func TestGuardFileErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := func(file string) ManagerConfig {
		return ManagerConfig{Builder: newFakeBuilder(), Relays: func() []RelayInfo { return nil }, GuardFile: file}
	}
	for name, tc := range map[string]struct{ body, want string }{
		"garbage":    {"{", "guard file"},
		"version":    {`{"version": 2, "guards": []}`, "version 2"},
		"identity":   {`{"version": 1, "guards": [{"identity": "abcd"}]}`, "bad identity"},
		"duplicate":  {`{"version": 1, "guards": [{"identity": "` + strings.Repeat("00", 32) + `"}, {"identity": "` + strings.Repeat("00", 32) + `"}]}`, "twice"},
		"bad number": {`{"version": 1, "guards": [{"identity": "` + strings.Repeat("00", 32) + `", "failures": -1}]}`, "negative"},
	} {
		file := filepath.Join(dir, name)
		if err := os.WriteFile(file, []byte(tc.body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := NewManager(cfg(file)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: NewManager error %v, want one containing %q", name, err, tc.want)
		}
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, bytes.Repeat([]byte(" "), maxGuardFile+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewManager(cfg(big)); err == nil || !strings.Contains(err.Error(), "larger") {
		t.Errorf("oversized file: %v", err)
	}
	m, err := NewManager(cfg(filepath.Join(dir, "missing")))
	if err != nil {
		t.Fatalf("missing guard file: %v", err)
	}
	m.Close()
	// A file of more guards than twice the sample is cut to that.
	var sb strings.Builder
	sb.WriteString(`{"version": 1, "guards": [`)
	for i := range 100 {
		if i > 0 {
			sb.WriteString(",")
		}
		sb.WriteString(`{"identity": "` + strings.Repeat("00", 30) + string("0123456789"[i/10]) + "0" + string("0123456789"[i%10]) + `0"}`)
	}
	sb.WriteString("]}")
	s, err := unmarshalGuards([]byte(sb.String()), GuardParams{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.guards) != 2*DefaultGuardSample {
		t.Fatalf("%d guards loaded, want at most %d", len(s.guards), 2*DefaultGuardSample)
	}
}

// A directory that cannot hold the guard file is counted and logged; the
// Manager keeps working.
func TestGuardFileWriteError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "no", "such", "dir", "guards.json")
		var log recordLog
		b := newFakeBuilder()
		m, err := NewManager(ManagerConfig{Builder: b, Relays: func() []RelayInfo { return guardRelays(4, 2) }, GuardFile: file, Logf: log.logf})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		var k keyer
		dial(t, m, "example.com:80", k.next())
		if st := m.PathStats(); st.GuardSaveErrors == 0 || log.count("guard file") == 0 {
			t.Fatalf("a failed write was not counted (%d) or logged", st.GuardSaveErrors)
		}
	})
}

// FuzzGuardFile checks that reading a guard file never panics, and that
// what it accepts is written back and read again to the same sample.
func FuzzGuardFile(f *testing.F) {
	s := newGuardSet(GuardParams{})
	relays := guardRelays(4, 2)
	s.pin(relays[0], time.Unix(1e9, 0))
	s.failed(relays[0].Hop.Identity, time.Unix(1e9+5, 0))
	s.guards[0].bias.noteCircuit(true)
	f.Add(s.marshal())
	f.Add([]byte(`{"version":1,"guards":[]}`))
	f.Add([]byte(`{"version":1,"guards":[{"identity":"` + strings.Repeat("ab", 32) + `","confirm_idx":-3}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := unmarshalGuards(b, GuardParams{})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "circuit: guard file") {
				t.Fatalf("error %q lacks the prefix", err)
			}
			return
		}
		out := s.marshal()
		s2, err := unmarshalGuards(out, GuardParams{})
		if err != nil {
			t.Fatalf("re-reading what was written: %v", err)
		}
		if !bytes.Equal(s2.marshal(), out) {
			t.Fatal("a second round trip differs")
		}
	})
}
