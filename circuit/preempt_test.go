package circuit

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// With Preemptive set, clean circuits are built before any stream asks;
// the first stream takes one without waiting for a build, whatever its
// isolation key, and the pool is refilled when one is taken, dies or idles
// out. Close stops the maintainer (synctest fails a test whose goroutines
// are left blocked).
func TestManagerPreemptiveCircuits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newFakeBuilder()
		b.delay = 100 * time.Millisecond
		m := newFakeManager(t, b, fakeRelays(4, 2), ManagerConfig{Preemptive: 2, MaxIdle: 30 * time.Minute})
		time.Sleep(time.Second)
		synctest.Wait()
		if b.builds() != 2 || m.Preemptive() != 2 {
			t.Fatalf("before any stream: %d builds, %d clean circuits; want 2 and 2", b.builds(), m.Preemptive())
		}
		pool := b.circuits()

		start := time.Now()
		c := circuitOf(t, dial(t, m, "example.com:443", "alice"))
		if !slices.Contains(pool, c) || time.Since(start) != 0 {
			t.Fatalf("the first stream waited %v and took a preemptive circuit: %v", time.Since(start), slices.Contains(pool, c))
		}
		if c2 := circuitOf(t, dial(t, m, "example.com:80", "alice")); c2 != c {
			t.Fatal("the circuit a key took from the pool did not stay that key's")
		}
		if c3 := circuitOf(t, dial(t, m, "example.com:80", "bob")); c3 == c || !slices.Contains(pool, c3) {
			t.Fatal("a second key did not take the other clean circuit")
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if b.builds() != 4 || m.Preemptive() != 2 {
			t.Fatalf("after two were taken: %d builds, %d clean; want 4 and 2", b.builds(), m.Preemptive())
		}

		// A clean circuit dies: it is replaced.
		cs := b.circuits()
		cs[len(cs)-1].Close()
		time.Sleep(time.Second)
		synctest.Wait()
		if b.builds() != 5 || m.Preemptive() != 2 {
			t.Fatalf("after a clean circuit died: %d builds, %d clean; want 5 and 2", b.builds(), m.Preemptive())
		}

		// Clean circuits idle out after MaxIdle and are replaced.
		time.Sleep(30*time.Minute + m.sweepEvery + time.Second)
		synctest.Wait()
		if b.builds() != 7 || m.Preemptive() != 2 {
			t.Fatalf("after MaxIdle: %d builds, %d clean; want 7 and 2", b.builds(), m.Preemptive())
		}

		m.Close()
		for i, c := range b.circuits() {
			if !c.closed() {
				t.Fatalf("circuit %d open after Close", i)
			}
		}
	})
}

// A preemptive build that fails is retried after 1s, then 2s, 4s ... up to
// 30s between tries; once relays are known the pool fills.
func TestManagerPreemptiveBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newFakeBuilder()
		var tries atomic.Int32
		var known atomic.Bool
		relays := fakeRelays(4, 2)
		m, err := NewManager(ManagerConfig{
			Builder:    b,
			Preemptive: 1,
			Relays: func() []RelayInfo {
				tries.Add(1)
				if !known.Load() {
					return nil // no directory yet
				}
				return relays
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		synctest.Wait()
		start := time.Now()
		// Tries at 0, 1, 3, 7, 15, 31, 61, 91 seconds.
		for _, c := range []struct {
			at   time.Duration
			want int32
		}{{0, 1}, {999 * time.Millisecond, 1}, {time.Second, 2}, {3 * time.Second, 3}, {7 * time.Second, 4}, {31 * time.Second, 6}, {61 * time.Second, 7}, {91 * time.Second, 8}} {
			time.Sleep(time.Until(start.Add(c.at)))
			synctest.Wait()
			if got := tries.Load(); got != c.want {
				t.Fatalf("at %v: %d tries, want %d", c.at, got, c.want)
			}
		}
		known.Store(true)
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if b.builds() != 1 || m.Preemptive() != 1 {
			t.Fatalf("once relays are known: %d builds, %d clean; want 1 and 1", b.builds(), m.Preemptive())
		}
	})
}

// BenchmarkDialStreamPreemptive measures a new isolation key's first
// stream with a clean circuit ready and with none (a fake build of 2ms,
// about a 3-hop build over loopback): what the pool saves a first request.
func BenchmarkDialStreamPreemptive(b *testing.B) {
	for _, ready := range []bool{false, true} {
		name := "none"
		if ready {
			name = "ready"
		}
		b.Run(name, func(b *testing.B) {
			fb := newFakeBuilder()
			fb.delay = 2 * time.Millisecond
			relays := fakeRelays(4, 2)
			m, err := NewManager(ManagerConfig{Builder: fb, Relays: func() []RelayInfo { return relays }})
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if ready {
					b.StopTimer()
					if err := m.Preempt(b.Context()); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				i++
				c, err := m.DialStream(b.Context(), "example.com:80", fmt.Sprint(i))
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				c.Close()
				c.(*fakeConn).circ.Close() // no reuse: each stream needs a circuit
				b.StartTimer()
			}
		})
	}
}
