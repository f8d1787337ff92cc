package hs

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/flynn/noise"

	"github.com/darkmatter/darkmatter/crypto/noiseconf"
)

// FuzzOpenDescriptor feeds arbitrary record values (a DHT node or anyone
// who knows the address can store them) to OpenDescriptor: no panic, only
// the package's errors, and whatever opens re-seals to a value that opens
// to the same descriptor.
func FuzzOpenDescriptor(f *testing.F) {
	fx := newFixture(f, 50)
	priv, pub := clientKeysFor(f, 51, 2)
	f.Add(fx.seal(f, fx.descriptor(2), nil))
	f.Add(fx.seal(f, fx.descriptor(1), pub))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, v []byte) {
		d, err := fx.open(v, priv[0])
		if err != nil {
			if !errors.Is(err, ErrBadDescriptor) && !errors.Is(err, ErrNotAuthorised) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		v2, err := SealDescriptor(nil, d, fx.network, fx.id.Public(), fx.p, nil)
		if err != nil {
			t.Fatal(err)
		}
		d2, err := fx.open(v2, nil)
		if err != nil || !reflect.DeepEqual(d, d2) {
			t.Fatalf("re-sealed descriptor: %v", err)
		}
	})
}

// FuzzServiceAccept feeds arbitrary INTRODUCE2 encrypted parts (from any
// client, through an introduction point) to the service.
func FuzzServiceAccept(f *testing.F) {
	fx := newFixture(f, 52)
	_, enc, err := ClientIntroduce(nil, fx.target(), testIntro())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(enc)
	f.Add(enc[:100])
	f.Fuzz(func(t *testing.T, enc []byte) {
		_, _, reply, l, err := fx.accept(nil, enc)
		if err != nil {
			if !errors.Is(err, ErrHandshake) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if len(reply) != ReplyLen || l == nil {
			t.Fatal("accepted without a reply or layer")
		}
	})
}

// FuzzClientFinish feeds arbitrary JOINED payloads (from the rendezvous
// relay) to a client: none may finish the handshake.
func FuzzClientFinish(f *testing.F) {
	fx := newFixture(f, 53)
	_, enc, _ := ClientIntroduce(nil, fx.target(), testIntro())
	_, _, reply, _, err := fx.accept(nil, enc)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(reply) // genuine, but for another handshake
	f.Add(make([]byte, ReplyLen))
	f.Fuzz(func(t *testing.T, r []byte) {
		h, _, err := ClientIntroduce(nil, fx.target(), testIntro())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.Finish(r); err == nil {
			t.Fatal("forged reply accepted")
		} else if !errors.Is(err, ErrHandshake) && !errors.Is(err, ErrMalformed) {
			t.Fatalf("unexpected error %v", err)
		}
	})
}

// FuzzLayerOpen feeds arbitrary end-to-end messages (from the other end or
// any relay on the joined circuit) to a fresh layer: only the genuine first
// message opens, and after a forged one the genuine one still opens.
func FuzzLayerOpen(f *testing.F) {
	fx := newFixture(f, 54)
	cl, _ := handshake(f, fx)
	key := cl.send.UnsafeKey()
	genuine := cl.Seal(nil, []byte("genuine"))
	f.Add(genuine)
	f.Add([]byte{})
	f.Add(genuine[:16])
	f.Fuzz(func(t *testing.T, ct []byte) {
		l := &Layer{recv: noise.UnsafeNewCipherState(noiseconf.Suite, key, 0)}
		pt, err := l.Open(nil, ct)
		if err == nil {
			if !bytes.Equal(ct, genuine) || string(pt) != "genuine" {
				t.Fatalf("forged message opened: %q", pt)
			}
			return
		}
		if pt, err := l.Open(nil, genuine); err != nil || string(pt) != "genuine" {
			t.Fatalf("genuine message after a forged one: %v", err)
		}
	})
}
