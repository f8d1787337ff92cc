package circuit

import (
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/crypto/onionhs"
)

// sinkChan is a channel whose sends go nowhere: what a relay answers is
// counted and freed.
type sinkChan struct {
	sent atomic.Int64
	done chan struct{}
}

func (c *sinkChan) Send(x *cell.Cell) error { x.Free(); c.sent.Add(1); return nil }
func (c *sinkChan) Initiator() bool         { return false }
func (c *sinkChan) Done() <-chan struct{}   { return c.done }

// benchRelay is a relay switch for the CREATE benchmarks.
func benchRelay(b *testing.B, tune func(*Config)) *Switch {
	k, err := keys.GenerateNodeKeys(nil)
	if err != nil {
		b.Fatal(err)
	}
	fn := &fakeNode{keys: k, net: newFakeNet()}
	cfg := Config{Network: "test", Onion: k.Onion, KEM: k.KEM, Linker: fn, Extender: fn}
	tune(&cfg)
	s, err := NewSwitch(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCreateRefused is a relay's cost for a CREATE its channel's token
// bucket refuses: the work of HandleCell up to the DESTROY it sends (one
// wire cell parsed into a pooled cell included).
func BenchmarkCreateRefused(b *testing.B) {
	s := benchRelay(b, func(c *Config) { c.CreateRate, c.CreateBurst = 1e-9, 1 })
	ch := &sinkChan{done: make(chan struct{})}
	wire := cell.New(rawID(1), cell.CmdCreate)
	wire.SetPayload(junkCreate())
	s.HandleCell(ch, cell.New(rawID(1), cell.CmdPadding)) // creates the channel's table
	b.ReportAllocs()
	cpu := cpuTime()
	id := 0
	for b.Loop() {
		id++
		wire.SetCirc(rawID(id))
		c, _ := cell.Parse(wire.Bytes())
		s.HandleCell(ch, c)
	}
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N)/1e3, "cpu-µs/op")
	if st := s.Stats(); st.CreateRateLimited < uint64(b.N)-1 {
		b.Fatalf("%d of %d refused", st.CreateRateLimited, b.N)
	}
}

// BenchmarkCreateAccepted is a relay's CPU time for a CREATE it answers
// with CREATED (admission, the handshake on a worker, the circuit's state),
// with every worker busy.
func BenchmarkCreateAccepted(b *testing.B) {
	s := benchRelay(b, func(c *Config) {
		c.CreateRate, c.CreateBurst = 1e9, 1e9
		c.MaxCircuitsPerChannel, c.MaxCircuits = 1<<30, 1<<30
		c.MaxPendingCreates, c.MaxPendingCreatesPerChannel = 1<<30, 1<<30
	})
	ch := &sinkChan{done: make(chan struct{})}
	rk := onionhs.RelayKeys{Onion: s.cfg.Onion.Public(), KEM: s.cfg.KEM.Public()}
	msgs := make([][]byte, b.N)
	for i := range msgs {
		_, m, err := onionhs.ClientStart(nil, "test", rk)
		if err != nil {
			b.Fatal(err)
		}
		msgs[i] = m
	}
	b.ResetTimer()
	cpu := cpuTime()
	for i := range b.N {
		c := cell.New(rawID(i+1), cell.CmdCreate)
		c.SetPayload(msgs[i])
		s.HandleCell(ch, c)
	}
	for ch.sent.Load() < int64(b.N) {
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N)/1e3, "cpu-µs/op")
	if s.Circuits() != b.N {
		b.Fatalf("%d circuits for %d CREATEs", s.Circuits(), b.N)
	}
}
