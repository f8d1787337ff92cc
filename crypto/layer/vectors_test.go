package layer

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/darkmatter/darkmatter/internal/testvec"
)

// layerVectorsFile is the JSON test vector file in spec/vectors shared with
// spec/circuits.md §4.
const layerVectorsFile = "layer.json"

// vecBody is the body size of every vector: a real cell body (cell.BodyLen,
// which this package cannot import).
const vecBody = 4080

type layerVectors struct {
	Comment    string `json:"comment"`
	BodySize   int    `json:"body_size"`
	DeriveKeys []struct {
		Secret   string `json:"secret"`
		Forward  string `json:"forward"`
		Backward string `json:"backward"`
	} `json:"derive_keys"`
	Relay struct {
		Comment     string      `json:"comment"`
		ForwardKey  string      `json:"forward_key"`
		BackwardKey string      `json:"backward_key"`
		Steps       []relayStep `json:"steps"`
	} `json:"relay"`
	Circuits []circuitVector `json:"circuits"`
}

// relayStep is one operation on a single hop's Relay state; steps run in
// order, so counters advance from step to step.
type relayStep struct {
	Op      string `json:"op"` // "forward", "originate" or "backward"
	Counter uint64 `json:"counter"`
	Input   string `json:"input"`
	Output  string `json:"output"`
	ForMe   *bool  `json:"for_me,omitempty"`
}

type circuitVector struct {
	Comment string `json:"comment"`
	Hops    []struct {
		Forward  string `json:"forward"`
		Backward string `json:"backward"`
	} `json:"hops"`
	Forward []struct {
		Target          int    `json:"target"`
		Message         string `json:"message"`
		Junk            string `json:"junk"`
		Sealed          string `json:"sealed"`
		DeliveredHeader string `json:"delivered_header"`
	} `json:"forward"`
	Backward []struct {
		Origin   int    `json:"origin"`
		Message  string `json:"message"`
		Received string `json:"received"`
	} `json:"backward"`
}

func vecKey(t *testing.T, s string) [KeySize]byte {
	t.Helper()
	b := testvec.Hex(t, s)
	if len(b) != KeySize {
		t.Fatalf("key %q is %d bytes", s, len(b))
	}
	return [KeySize]byte(b)
}

// vecMessage expands a message prefix to MessageSize(vecBody) bytes: the
// vectors store messages without their zero padding.
func vecMessage(t *testing.T, s string) []byte {
	t.Helper()
	p := testvec.Hex(t, s)
	if len(p) > MessageSize(vecBody) {
		t.Fatalf("message of %d bytes", len(p))
	}
	m := make([]byte, MessageSize(vecBody))
	copy(m, p)
	return m
}

// vecCell returns a body of vecBody bytes with Spare capacity holding b.
func vecCell(b []byte) []byte {
	c := make([]byte, vecBody, vecBody+Spare)
	copy(c, b)
	return c
}

// --- Reference implementation --------------------------------------------
//
// The ref* functions implement spec/circuits.md §4 from its text with
// crypto/aes and crypto/cipher only (GCM for sealing and opening, CTR for the
// keystream), independently of this package's code. The vectors must agree
// with both.

type refHop struct {
	fwd, bwd       []byte
	fwdCtr, bwdCtr uint64
}

func refNonce(ctr uint64) []byte {
	n := make([]byte, 12)
	binary.BigEndian.PutUint64(n[4:], ctr)
	return n
}

func refGCM(key []byte) cipher.AEAD {
	b, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		panic(err)
	}
	return a
}

// refKeystream returns n bytes of the GCM keystream for counter ctr: AES-CTR
// whose first counter block is nonce || 00000002 (NIST SP 800-38D §7.1).
func refKeystream(key []byte, ctr uint64, n int) []byte {
	b, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	iv := make([]byte, 16)
	copy(iv, refNonce(ctr))
	iv[15] = 2
	ks := make([]byte, n)
	cipher.NewCTR(b, iv).XORKeyStream(ks, ks)
	return ks
}

// refSlot returns the offset of header slot s in a body of B bytes.
func refSlot(B, s int) int { return B - 16*(s+1) }

func refXor(dst, a, b []byte) {
	for i := range dst {
		dst[i] = a[i] ^ b[i]
	}
}

// refSeal builds the forward body for hop t (§4.3). junk fills slots lo-1
// down to 2 in body order, lo = 7-t.
func refSeal(hops []refHop, t int, msg, junk []byte) []byte {
	B := vecBody
	m := B - 128
	// f[s] is the ciphertext of slot s as the current hop receives it.
	var f [8][16]byte
	lo := 7
	for i := 0; i < t; i++ {
		ks := refKeystream(hops[i].fwd, hops[i].fwdCtr, B)
		var next [8][16]byte
		for s := lo; s <= 7; s++ {
			o := refSlot(B, s)
			refXor(next[s-1][:], f[s][:], ks[o:o+16])
		}
		f = next
		lo--
	}
	if len(junk) != 16*(lo-2) {
		panic(fmt.Sprintf("target %d needs %d junk bytes, have %d", t, 16*(lo-2), len(junk)))
	}
	p := make([]byte, B)
	copy(p, msg)
	copy(p[refSlot(B, lo-1):], junk) // slots lo-1 .. 2; slot 1 stays zero
	ks := refKeystream(hops[t].fwd, hops[t].fwdCtr, B)
	for s := lo; s <= 7; s++ {
		o := refSlot(B, s)
		refXor(p[o:o+16], f[s][:], ks[o:o+16])
	}
	c := refGCM(hops[t].fwd).Seal(nil, refNonce(hops[t].fwdCtr), p[:B-16], nil)
	for i := t - 1; i >= 0; i-- {
		p := make([]byte, B)
		copy(p[:m], c[:m])
		copy(p[m:B-16], c[m+16:]) // slot s+1 of hop i = slot s of hop i+1
		c = refGCM(hops[i].fwd).Seal(nil, refNonce(hops[i].fwdCtr), p[:B-16], nil)
	}
	for i := 0; i <= t; i++ {
		hops[i].fwdCtr++
	}
	return c
}

// refForward is a relay removing its forward layer (§4.4).
func refForward(h *refHop, c []byte) (out []byte, forMe bool, ok bool) {
	B := len(c)
	m := B - 128
	p, err := refGCM(h.fwd).Open(nil, refNonce(h.fwdCtr), c, nil)
	if err != nil {
		return nil, false, false
	}
	h.fwdCtr++
	forMe = bytes.Equal(p[refSlot(B, 1):refSlot(B, 1)+16], make([]byte, 16))
	out = make([]byte, 0, B)
	out = append(out, p[:m]...)
	out = append(out, make([]byte, 16)...) // zero filler in slot 7
	out = append(out, p[m:B-16]...)        // slots 7..1 become 6..0
	return out, forMe, true
}

// refOriginate is a relay sealing a backward message (§4.5).
func refOriginate(h *refHop, msg []byte) []byte {
	B := vecBody
	p := make([]byte, B-32)
	copy(p, msg)
	c := refGCM(h.bwd).Seal(nil, refNonce(h.bwdCtr), p, nil) // tag in slot 1
	c = append(c, refMarker(h.bwd, h.bwdCtr, B)...)          // slot 0: marker
	h.bwdCtr++
	return c
}

// refMarker is the originator marker: the GCM keystream block at offset
// B-32, just past the sealed plaintext (§4.5).
func refMarker(key []byte, ctr uint64, B int) []byte {
	return refKeystream(key, ctr, B-16)[B-32:]
}

// refBackward is a relay adding its keystream layer (§4.5).
func refBackward(h *refHop, c []byte) []byte {
	out := make([]byte, len(c))
	refXor(out, c, refKeystream(h.bwd, h.bwdCtr, len(c)))
	h.bwdCtr++
	return out
}

// refOpen is the client peeling a backward body (§4.5).
func refOpen(hops []refHop, c []byte) (origin int, msg []byte, ok bool) {
	B := len(c)
	c = append([]byte(nil), c...)
	for i := range hops {
		if bytes.Equal(c[B-16:], refMarker(hops[i].bwd, hops[i].bwdCtr, B)) {
			p, err := refGCM(hops[i].bwd).Open(nil, refNonce(hops[i].bwdCtr), c[:B-16], nil)
			if err != nil {
				return 0, nil, false
			}
			for j := 0; j <= i; j++ {
				hops[j].bwdCtr++
			}
			return i, p[:B-128], true
		}
		refXor(c, c, refKeystream(hops[i].bwd, hops[i].bwdCtr, B))
	}
	return 0, nil, false
}

// --- Vector generation (-update) ------------------------------------------

// pattern returns n deterministic bytes.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31) + seed
	}
	return b
}

func hexOf(b []byte) string { return hex.EncodeToString(b) }

// generateLayerVectors writes the inputs of every vector; the outputs are
// filled in by TestLayerVectors.
func generateLayerVectors() *layerVectors {
	v := &layerVectors{
		Comment: "darkmatter layer crypto vectors (spec/circuits.md §3 key derivation, §4 layer crypto). " +
			"Hex. Bodies are whole cell bodies of body_size bytes; header slot s occupies bytes " +
			"[body_size-16(s+1), body_size-16s). A 'message' is the start of the body_size-128-byte message area; " +
			"the rest of the area is zero. Counters start at 0 for every hop and direction and advance in the order " +
			"the vectors are listed. Checked by crypto/layer TestLayerVectors (go test -run TestLayerVectors -update " +
			"rewrites this file).",
		BodySize: vecBody,
	}
	for _, secret := range [][]byte{make([]byte, 64), testvec.Seq(0, 64), testvec.Seq(0x40, 64)} {
		v.DeriveKeys = append(v.DeriveKeys, struct {
			Secret   string `json:"secret"`
			Forward  string `json:"forward"`
			Backward string `json:"backward"`
		}{Secret: hexOf(secret)})
	}

	// One hop, explicit counters.
	rk, _ := DeriveKeys(testvec.Seq(0x40, 64))
	v.Relay.Comment = "One hop with keys derive_keys(40..7f). Steps run in order on one Relay state. " +
		"forward: input is the body as received (tag in slot 0), output the body after Forward (the message " +
		"area decrypted, slots shifted one towards slot 0, zero slot 7), for_me whether decrypted slot 1 was zero. " +
		"originate: input is the message, output the sealed body. backward: input and output are whole bodies."
	v.Relay.ForwardKey = hexOf(rk.Forward[:])
	v.Relay.BackwardKey = hexOf(rk.Backward[:])
	ref := refHop{fwd: rk.Forward[:], bwd: rk.Backward[:]}
	fwdPlain := func(msg string, forMe bool) []byte {
		// What a client wants the hop to decrypt: message, pseudo-random
		// slots 7..2, and slot 1 zero (for the hop) or a next-hop tag.
		p := make([]byte, vecBody)
		copy(p, msg)
		m := MessageSize(vecBody)
		copy(p[m:], pattern(6*16, 0x5a))
		if !forMe {
			copy(p[refSlot(vecBody, 1):], pattern(16, 0xc3))
		}
		return p
	}
	steps := []struct {
		op    string
		text  string
		forMe bool
	}{
		{"forward", "relay forward 0: for this hop", true},
		{"forward", "relay forward 1: for the next hop", false},
		{"originate", "relay originate 0", false},
		{"backward", "", false},
		{"forward", "relay forward 2: for this hop", true},
		{"originate", "relay originate 2", false},
	}
	for _, s := range steps {
		st := relayStep{Op: s.op}
		switch s.op {
		case "forward":
			st.Counter = ref.fwdCtr
			p := fwdPlain(s.text, s.forMe)
			c := refGCM(ref.fwd).Seal(nil, refNonce(ref.fwdCtr), p[:vecBody-16], nil)
			ref.fwdCtr++
			st.Input = hexOf(c)
			fm := s.forMe
			st.ForMe = &fm
		case "originate":
			st.Counter = ref.bwdCtr
			ref.bwdCtr++
			st.Input = hexOf([]byte(s.text))
		case "backward":
			st.Counter = ref.bwdCtr
			ref.bwdCtr++
			st.Input = hexOf(pattern(vecBody, 0x11))
		}
		v.Relay.Steps = append(v.Relay.Steps, st)
	}

	// Whole circuits: hop i's keys are derive_keys(64 bytes of i+1).
	addCircuit := func(comment string, hops int, targets, origins []int) {
		var cv circuitVector
		cv.Comment = comment
		for i := 0; i < hops; i++ {
			k, _ := DeriveKeys(bytes.Repeat([]byte{byte(i + 1)}, 64))
			cv.Hops = append(cv.Hops, struct {
				Forward  string `json:"forward"`
				Backward string `json:"backward"`
			}{hexOf(k.Forward[:]), hexOf(k.Backward[:])})
		}
		for n, t := range targets {
			lo := Slots - 1 - t
			cv.Forward = append(cv.Forward, struct {
				Target          int    `json:"target"`
				Message         string `json:"message"`
				Junk            string `json:"junk"`
				Sealed          string `json:"sealed"`
				DeliveredHeader string `json:"delivered_header"`
			}{
				Target:  t,
				Message: hexOf(fmt.Appendf(nil, "forward cell %d to hop %d of %d", n, t, hops)),
				Junk:    hexOf(pattern(16*(lo-2), byte(0xa0+n))),
			})
		}
		for n, o := range origins {
			cv.Backward = append(cv.Backward, struct {
				Origin   int    `json:"origin"`
				Message  string `json:"message"`
				Received string `json:"received"`
			}{Origin: o, Message: hexOf(fmt.Appendf(nil, "backward cell %d from hop %d of %d", n, o, hops))})
		}
		v.Circuits = append(v.Circuits, cv)
	}
	addCircuit("Three hops with keys derive_keys(64 x 01), (64 x 02), (64 x 03). forward: cells in order, "+
		"each sealed for 'target' with 'junk' in the free slots lo-1..2 (lo = 7-target) in body order; 'sealed' "+
		"is the body hop 0 receives, 'delivered_header' the last 128 bytes after the target's Forward (the message "+
		"area then equals the message). Only the message area of 'sealed' is reproducible with random junk. "+
		"backward: cells in order, originated by 'origin'; 'received' is the body the client receives.",
		3, []int{0, 1, 2, 2}, []int{2, 0, 1, 2})
	addCircuit("Six hops (MaxHops) with keys derive_keys(64 x 01) .. (64 x 06). A cell for hop 5 has no free "+
		"slot, hence no junk: 'sealed' is fully deterministic.",
		6, []int{5, 5}, []int{5, 3})
	return v
}

// TestLayerVectors checks spec/vectors/layer.json against this package and
// against the reference implementation above. With -update it regenerates
// the file.
func TestLayerVectors(t *testing.T) {
	v := testvec.LoadOrGenerate(t, layerVectorsFile, generateLayerVectors)
	if v.BodySize != vecBody {
		t.Fatalf("body_size %d, want %d", v.BodySize, vecBody)
	}
	for i := range v.DeriveKeys {
		tv := &v.DeriveKeys[i]
		k, err := DeriveKeys(testvec.Hex(t, tv.Secret))
		if err != nil {
			t.Fatal(err)
		}
		testvec.CheckHex(t, fmt.Sprintf("derive_keys[%d] forward", i), &tv.Forward, k.Forward[:])
		testvec.CheckHex(t, fmt.Sprintf("derive_keys[%d] backward", i), &tv.Backward, k.Backward[:])
	}

	t.Run("relay", func(t *testing.T) {
		keys := Keys{Forward: vecKey(t, v.Relay.ForwardKey), Backward: vecKey(t, v.Relay.BackwardKey)}
		r, err := NewRelay(&keys)
		if err != nil {
			t.Fatal(err)
		}
		ref := refHop{fwd: keys.Forward[:], bwd: keys.Backward[:]}
		for i := range v.Relay.Steps {
			st := &v.Relay.Steps[i]
			what := fmt.Sprintf("relay step %d (%s)", i, st.Op)
			var want uint64
			switch st.Op {
			case "forward":
				want = ref.fwdCtr
			case "originate", "backward":
				want = ref.bwdCtr
			default:
				t.Fatalf("%s: unknown op", what)
			}
			if st.Counter != want {
				t.Fatalf("%s: counter %d, but the steps before imply %d", what, st.Counter, want)
			}
			switch st.Op {
			case "forward":
				in := testvec.Hex(t, st.Input)
				body := vecCell(in)
				forMe, err := r.Forward(body)
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				testvec.CheckHex(t, what, &st.Output, body)
				if st.ForMe == nil || *st.ForMe != forMe {
					t.Errorf("%s: forMe = %v, file has %v", what, forMe, st.ForMe)
				}
				out, refMe, ok := refForward(&ref, in)
				if !ok || !bytes.Equal(out, body) || refMe != forMe {
					t.Errorf("%s: reference implementation disagrees (ok=%v forMe=%v)", what, ok, refMe)
				}
			case "originate":
				msg := vecMessage(t, st.Input)
				body := vecCell(msg)
				if err := r.Originate(body); err != nil {
					t.Fatal(err)
				}
				testvec.CheckHex(t, what, &st.Output, body)
				if !bytes.Equal(refOriginate(&ref, msg), body) {
					t.Errorf("%s: reference implementation disagrees", what)
				}
			case "backward":
				in := testvec.Hex(t, st.Input)
				body := vecCell(in)
				if err := r.Backward(body); err != nil {
					t.Fatal(err)
				}
				testvec.CheckHex(t, what, &st.Output, body)
				if !bytes.Equal(refBackward(&ref, in), body) {
					t.Errorf("%s: reference implementation disagrees", what)
				}
			}
		}
	})

	for ci := range v.Circuits {
		cv := &v.Circuits[ci]
		t.Run(fmt.Sprintf("circuit%d", ci), func(t *testing.T) {
			client, err := NewClient()
			if err != nil {
				t.Fatal(err)
			}
			var relays []*Relay
			var ref, refClient []refHop
			for _, h := range cv.Hops {
				k := Keys{Forward: vecKey(t, h.Forward), Backward: vecKey(t, h.Backward)}
				if err := client.AddHop(&k); err != nil {
					t.Fatal(err)
				}
				r, err := NewRelay(&k)
				if err != nil {
					t.Fatal(err)
				}
				relays = append(relays, r)
				ref = append(ref, refHop{fwd: k.Forward[:], bwd: k.Backward[:]})
				refClient = append(refClient, refHop{fwd: k.Forward[:], bwd: k.Backward[:]})
			}
			m := MessageSize(vecBody)
			for i := range cv.Forward {
				fv := &cv.Forward[i]
				what := fmt.Sprintf("forward cell %d (target %d)", i, fv.Target)
				msg := vecMessage(t, fv.Message)
				junk := testvec.Hex(t, fv.Junk)

				// The reference seals with the given junk; the package
				// with its own random junk, so only the message area and
				// (without junk) the whole body must agree.
				sealed := refSeal(refClient, fv.Target, msg, junk)
				testvec.CheckHex(t, what+" sealed", &fv.Sealed, sealed)
				mine := vecCell(msg)
				if err := client.Seal(mine, fv.Target); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(mine[:m], sealed[:m]) {
					t.Errorf("%s: Client.Seal message area differs from the vector", what)
				}
				if len(junk) == 0 && !bytes.Equal(mine, sealed) {
					t.Errorf("%s: Client.Seal differs from the vector", what)
				}

				// The package's relays process the vector's body and the
				// package's own body alike.
				body := vecCell(testvec.Hex(t, fv.Sealed))
				for h := 0; h <= fv.Target; h++ {
					if !isZero(body[slotOff(vecBody, 7):][:TagSize]) {
						t.Errorf("%s: hop %d receives a non-zero slot 7", what, h)
					}
					refOut, refMe, ok := refForward(&ref[h], body)
					forMe, err := relays[h].Forward(body)
					if err != nil {
						t.Fatalf("%s: hop %d: %v", what, h, err)
					}
					if forMe != (h == fv.Target) {
						t.Fatalf("%s: hop %d: forMe = %v", what, h, forMe)
					}
					if !ok || refMe != forMe || !bytes.Equal(refOut, body) {
						t.Errorf("%s: hop %d: reference relay disagrees", what, h)
					}
				}
				if !bytes.Equal(body[:m], msg) {
					t.Errorf("%s: delivered message differs", what)
				}
				testvec.CheckHex(t, what+" delivered_header", &fv.DeliveredHeader, body[m:])
			}
			for i := range cv.Backward {
				bv := &cv.Backward[i]
				what := fmt.Sprintf("backward cell %d (origin %d)", i, bv.Origin)
				msg := vecMessage(t, bv.Message)
				body := vecCell(msg)
				if err := relays[bv.Origin].Originate(body); err != nil {
					t.Fatal(err)
				}
				refBody := refOriginate(&ref[bv.Origin], msg)
				for h := bv.Origin - 1; h >= 0; h-- {
					if err := relays[h].Backward(body); err != nil {
						t.Fatal(err)
					}
					refBody = refBackward(&ref[h], refBody)
				}
				testvec.CheckHex(t, what+" received", &bv.Received, body)
				if !bytes.Equal(refBody, body) {
					t.Errorf("%s: reference relays disagree", what)
				}
				received := testvec.Hex(t, bv.Received)
				o, refMsg, ok := refOpen(refClient, received)
				if !ok || o != bv.Origin || !bytes.Equal(refMsg, msg) {
					t.Errorf("%s: reference client opens origin %d ok=%v", what, o, ok)
				}
				in := vecCell(received)
				got, err := client.Open(in)
				if err != nil || got != bv.Origin {
					t.Fatalf("%s: Client.Open = %d, %v", what, got, err)
				}
				if !bytes.Equal(in[:m], msg) {
					t.Errorf("%s: Client.Open message differs", what)
				}
			}
		})
	}

	if testvec.Update() && !t.Failed() {
		testvec.Save(t, layerVectorsFile, v)
	}
}

// TestClientSealEveryTargetAgainstReference checks the package's Client.Seal
// for every target of every circuit length against the reference relays: the
// reference (written from the spec) must accept what the package seals.
func TestClientSealEveryTargetAgainstReference(t *testing.T) {
	for hops := 1; hops <= MaxHops; hops++ {
		client, err := NewClient()
		if err != nil {
			t.Fatal(err)
		}
		var ref []refHop
		for i := 0; i < hops; i++ {
			k, _ := DeriveKeys([]byte{byte(hops), byte(i)})
			if err := client.AddHop(&k); err != nil {
				t.Fatal(err)
			}
			ref = append(ref, refHop{fwd: k.Forward[:], bwd: k.Backward[:]})
		}
		for round := 0; round < 2; round++ {
			for target := 0; target < hops; target++ {
				msg := pattern(MessageSize(vecBody), byte(17*target+round))
				body := vecCell(msg)
				if err := client.Seal(body, target); err != nil {
					t.Fatal(err)
				}
				c := append([]byte(nil), body...)
				for h := 0; h <= target; h++ {
					out, forMe, ok := refForward(&ref[h], c)
					if !ok || forMe != (h == target) {
						t.Fatalf("hops=%d target=%d: reference hop %d: ok=%v forMe=%v", hops, target, h, ok, forMe)
					}
					c = out
				}
				if !bytes.Equal(c[:MessageSize(vecBody)], msg) {
					t.Fatalf("hops=%d target=%d: message differs", hops, target)
				}
			}
		}
	}
}
