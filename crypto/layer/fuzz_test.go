package layer

import "testing"

// Network input reaches layer crypto as RELAY cell bodies: any bytes must
// either authenticate or be refused, never panic or be accepted by chance.
func FuzzRelayForward(f *testing.F) {
	f.Add([]byte{1, 2, 3}, uint8(0))
	f.Fuzz(func(t *testing.T, prefix []byte, fill uint8) {
		tc := newTestCircuit(t, 2)
		body := fuzzBody(prefix, fill)
		if _, err := tc.relays[0].Forward(body); err == nil {
			t.Fatal("forged cell authenticated")
		}
	})
}

func FuzzClientOpen(f *testing.F) {
	f.Add([]byte{1, 2, 3}, uint8(0))
	f.Fuzz(func(t *testing.T, prefix []byte, fill uint8) {
		tc := newTestCircuit(t, 3)
		body := fuzzBody(prefix, fill)
		if _, err := tc.client.Open(body); err == nil {
			t.Fatal("forged backward cell accepted")
		}
	})
}

// fuzzBody is a whole cell body filled with fill and starting with prefix.
func fuzzBody(prefix []byte, fill uint8) []byte {
	body := newBody(bodySize(testBody))
	for i := range body {
		body[i] = fill
	}
	copy(body, prefix)
	return body
}
