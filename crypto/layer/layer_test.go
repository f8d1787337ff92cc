package layer

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"testing"
)

const testBody = 4096 - 5

func newBody(n int) []byte { return make([]byte, n, n+Spare) }

type testCircuit struct {
	client *Client
	relays []*Relay
}

func newTestCircuit(t testing.TB, hops int) *testCircuit {
	t.Helper()
	c, err := NewClient()
	if err != nil {
		t.Fatal(err)
	}
	tc := &testCircuit{client: c}
	for i := 0; i < hops; i++ {
		var k Keys
		rand.Read(k.Forward[:])
		rand.Read(k.Backward[:])
		if err := c.AddHop(&k); err != nil {
			t.Fatal(err)
		}
		r, err := NewRelay(&k)
		if err != nil {
			t.Fatal(err)
		}
		tc.relays = append(tc.relays, r)
	}
	return tc
}

// bodySize rounds to a multiple of TagSize as the cell package does.
func bodySize(n int) int { return n / TagSize * TagSize }

func TestForwardEveryTarget(t *testing.T) {
	n := bodySize(testBody)
	for hops := 1; hops <= MaxHops; hops++ {
		tc := newTestCircuit(t, hops)
		for round := 0; round < 3; round++ {
			for target := 0; target < hops; target++ {
				msg := make([]byte, MessageSize(n))
				rand.Read(msg)
				body := newBody(n)
				copy(body, msg)
				if err := tc.client.Seal(body, target); err != nil {
					t.Fatal(err)
				}
				for i := 0; i <= target; i++ {
					// Every hop sees a zero slot 7 and nothing else that is zero.
					if !isZero(body[slotOff(n, 7) : slotOff(n, 7)+TagSize]) {
						t.Fatalf("hops=%d target=%d hop %d: slot 7 not zero", hops, target, i)
					}
					forMe, err := tc.relays[i].Forward(body)
					if err != nil {
						t.Fatalf("hops=%d target=%d hop %d: %v", hops, target, i, err)
					}
					if forMe != (i == target) {
						t.Fatalf("hops=%d target=%d hop %d: forMe=%v", hops, target, i, forMe)
					}
				}
				if !bytes.Equal(body[:MessageSize(n)], msg) {
					t.Fatalf("hops=%d target=%d: message changed", hops, target)
				}
			}
		}
	}
}

func TestBackwardEveryOrigin(t *testing.T) {
	n := bodySize(testBody)
	for hops := 1; hops <= MaxHops; hops++ {
		tc := newTestCircuit(t, hops)
		for round := 0; round < 3; round++ {
			for origin := 0; origin < hops; origin++ {
				msg := make([]byte, MessageSize(n))
				rand.Read(msg)
				body := newBody(n)
				copy(body, msg)
				if err := tc.relays[origin].Originate(body); err != nil {
					t.Fatal(err)
				}
				for i := origin - 1; i >= 0; i-- {
					if err := tc.relays[i].Backward(body); err != nil {
						t.Fatal(err)
					}
				}
				got, err := tc.client.Open(body)
				if err != nil || got != origin {
					t.Fatalf("hops=%d origin=%d: got %d, %v", hops, origin, got, err)
				}
				if !bytes.Equal(body[:MessageSize(n)], msg) {
					t.Fatalf("hops=%d origin=%d: message changed", hops, origin)
				}
			}
		}
	}
}

// A byte changed anywhere between two hops is caught by the next hop.
func TestTamperDetectedAtNextHop(t *testing.T) {
	n := bodySize(testBody)
	for pos := 0; pos < n; pos += 7 {
		tc := newTestCircuit(t, 3)
		body := newBody(n)
		if err := tc.client.Seal(body, 2); err != nil {
			t.Fatal(err)
		}
		if _, err := tc.relays[0].Forward(body); err != nil {
			t.Fatal(err)
		}
		body[pos] ^= 0x40 // the middle relay's predecessor tampers
		if _, err := tc.relays[1].Forward(body); err != ErrAuth {
			t.Fatalf("pos %d: tampering not detected: %v", pos, err)
		}
	}
}

func TestReplayAndReorderFail(t *testing.T) {
	n := bodySize(testBody)
	tc := newTestCircuit(t, 2)
	a, b := newBody(n), newBody(n)
	tc.client.Seal(a, 1)
	tc.client.Seal(b, 1)
	saved := append([]byte(nil), a...)
	if _, err := tc.relays[0].Forward(b); err != ErrAuth {
		t.Fatalf("reordered cell accepted: %v", err)
	}
	tc2 := newTestCircuit(t, 1)
	c := newBody(n)
	tc2.client.Seal(c, 0)
	cp := append(make([]byte, 0, n+Spare), c...)
	if _, err := tc2.relays[0].Forward(c); err != nil {
		t.Fatal(err)
	}
	if _, err := tc2.relays[0].Forward(cp); err != ErrAuth {
		t.Fatalf("replayed cell accepted: %v", err)
	}
	_ = saved
}

func TestBackwardTamperDetectedByClient(t *testing.T) {
	n := bodySize(testBody)
	for pos := 0; pos < n; pos += 13 {
		tc := newTestCircuit(t, 3)
		body := newBody(n)
		tc.relays[2].Originate(body)
		body[pos] ^= 1
		tc.relays[1].Backward(body)
		tc.relays[0].Backward(body)
		if _, err := tc.client.Open(body); err == nil {
			t.Fatalf("pos %d: tampering not detected", pos)
		}
	}
}

// keystreamBlock must match the keystream GCM itself uses.
func TestKeystreamMatchesGCM(t *testing.T) {
	var key [32]byte
	rand.Read(key[:])
	var d dir
	if err := d.init(&key); err != nil {
		t.Fatal(err)
	}
	d.ctr = 12345
	n := 256
	buf := make([]byte, n, n+Spare)
	d.xor(buf, 0) // keystream of zeros
	for o := 0; o < n; o += TagSize {
		if !bytes.Equal(d.keystreamBlock(o, 0), buf[o:o+TagSize]) {
			t.Fatalf("offset %d: keystream mismatch", o)
		}
	}
}

func TestBodyChecks(t *testing.T) {
	r := newTestCircuit(t, 1).relays[0]
	for _, b := range [][]byte{nil, make([]byte, 100), make([]byte, 4096)[:4090], make([]byte, 4096)} {
		if _, err := r.Forward(b); err == nil {
			t.Fatalf("len %d cap %d accepted", len(b), cap(b))
		}
	}
	c, _ := NewClient()
	for i := 0; i < MaxHops; i++ {
		if err := c.AddHop(&Keys{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.AddHop(&Keys{}); err == nil {
		t.Fatal("more than MaxHops accepted")
	}
}

func TestDeriveKeysVector(t *testing.T) {
	k, err := DeriveKeys([]byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	if k.Forward == k.Backward {
		t.Fatal("directional keys equal")
	}
}

var benchSizes = []int{512, 1024, 2048, 4096, 8192, 16384}

func BenchmarkRelayForward(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			n := bodySize(size - 5)
			tc := newTestCircuit(b, 2)
			cells := make([][]byte, 64)
			for i := range cells {
				cells[i] = newBody(n)
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				// Relay 1 forwards cells it cannot authenticate: measures the
				// same AES-GCM open cost without needing client work per op.
				tc.relays[1].Forward(cells[i%64])
				i++
			}
		})
	}
}

func BenchmarkRelayBackward(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			n := bodySize(size - 5)
			r := newTestCircuit(b, 1).relays[0]
			body := newBody(n)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				r.Backward(body)
			}
		})
	}
}

func BenchmarkClientSeal3Hops(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			n := bodySize(size - 5)
			tc := newTestCircuit(b, 3)
			body := newBody(n)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				tc.client.Seal(body, 2)
			}
		})
	}
}

func BenchmarkClientOpen3Hops(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			n := bodySize(size - 5)
			tc := newTestCircuit(b, 3)
			body := newBody(n)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				tc.relays[2].Originate(body)
				tc.relays[1].Backward(body)
				tc.relays[0].Backward(body)
				tc.client.Open(body)
			}
		})
	}
}

// The hop next to an originator sees a marker it cannot tell from random:
// it differs from cell to cell and is never all zeros.
func TestBackwardMarkerHidden(t *testing.T) {
	n := bodySize(testBody)
	tc := newTestCircuit(t, 3)
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		body := newBody(n)
		tc.relays[2].Originate(body)
		m := string(body[n-TagSize:])
		if isZero(body[n-TagSize:]) || seen[m] {
			t.Fatal("marker is predictable")
		}
		seen[m] = true
		tc.relays[1].Backward(body)
		tc.relays[0].Backward(body)
		if hop, err := tc.client.Open(body); err != nil || hop != 2 {
			t.Fatalf("open: %d %v", hop, err)
		}
	}
}
