package link

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/darkmatter/darkmatter/crypto/noiseconf"
	"github.com/flynn/noise"
)

// The network ID vector in spec/links.md.
func TestNetworkIDVector(t *testing.T) {
	for _, tc := range []struct{ network, id string }{
		{"darkmatter", "af6e7a6c3c95444f"},
		{"", "61c09d914cf4f324"},
		{"testnet", "153e1bcefbff8b57"},
	} {
		id := NetworkID(tc.network)
		if got := hex.EncodeToString(id[:]); got != tc.id {
			t.Errorf("NetworkID(%q) = %s, want %s", tc.network, got, tc.id)
		}
	}
	p := preamble{version: Version, netID: NetworkID("darkmatter")}.append(nil)
	if got := hex.EncodeToString(p); got != "444d4b01"+"af6e7a6c3c95444f" {
		t.Errorf("preamble = %s", got)
	}
}

func TestParsePreamble(t *testing.T) {
	good := preamble{version: Version, netID: NetworkID("x")}.append(nil)
	p, err := parsePreamble(good)
	if err != nil || p.version != Version || p.netID != NetworkID("x") {
		t.Fatalf("parsePreamble(good) = %+v, %v", p, err)
	}
	if r, err := p.check(NetworkID("x")); r != 0 || err != nil {
		t.Errorf("check same network = %d, %v", r, err)
	}
	if r, _ := p.check(NetworkID("y")); r != RejectNetwork {
		t.Errorf("check other network = %d", r)
	}
	p.version = 2
	if r, _ := p.check(NetworkID("x")); r != RejectVersion {
		t.Errorf("check version 2 = %d", r)
	}
	for _, bad := range [][]byte{nil, good[:11], append(good, 0), []byte("DMX\x01........")} {
		if _, err := parsePreamble(bad); err == nil {
			t.Errorf("parsePreamble(%q) accepted", bad)
		}
	}
}

// transportCipher must produce exactly what flynn/noise's CipherState
// produces for the same key and nonces, and read it back.
func TestTransportCipherMatchesNoise(t *testing.T) {
	var k [32]byte
	k[0] = 42
	ref := noise.UnsafeNewCipherState(noiseconf.Suite, k, 0)
	ours, err := newTransportCipher(noise.UnsafeNewCipherState(noiseconf.Suite, k, 0))
	if err != nil {
		t.Fatal(err)
	}
	back, _ := newTransportCipher(noise.UnsafeNewCipherState(noiseconf.Suite, k, 0))
	for i := range 5 {
		pt := bytes.Repeat([]byte{byte(i)}, 100+i)
		want, err := ref.Encrypt(nil, nil, pt)
		if err != nil {
			t.Fatal(err)
		}
		buf := append(make([]byte, 0, 3+len(pt)+TagLen), 1, 2, 3)
		buf = append(buf, pt...)
		got, err := ours.seal(buf, 3)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got[:3], []byte{1, 2, 3}) || !bytes.Equal(got[3:], want) {
			t.Fatalf("message %d differs from flynn/noise", i)
		}
		opened, err := back.open(got[3:])
		if err != nil || !bytes.Equal(opened, pt) {
			t.Fatalf("open message %d: %v", i, err)
		}
	}
	// A tampered message fails.
	msg, _ := ours.seal(make([]byte, 10, 10+TagLen), 0)
	msg[0] ^= 1
	if _, err := back.open(msg); err == nil {
		t.Fatal("tampered message opened")
	}
}

// The message sizes follow from the Noise pattern.
func TestHandshakeSizes(t *testing.T) {
	s, err := (&Config{Static: newKey(t)}).settings()
	if err != nil {
		t.Fatal(err)
	}
	ini, msg1, err := startInitiator(&settings{network: s.network, rand: s.rand}, s.static.Public())
	if err != nil {
		t.Fatal(err)
	}
	if len(msg1) != Msg1Len {
		t.Errorf("msg1 is %d bytes, want %d", len(msg1), Msg1Len)
	}
	sess, msg2, err := respond(s, msg1)
	if err != nil {
		t.Fatal(err)
	}
	if len(msg2) != Msg2Len {
		t.Errorf("msg2 is %d bytes, want %d", len(msg2), Msg2Len)
	}
	isess, err := ini.finish(msg2, s.static.Public())
	if err != nil {
		t.Fatal(err)
	}
	// Each side's send key is the other's receive key.
	buf := append(make([]byte, 0, 5+TagLen), "hello"...)
	m, _ := isess.send.seal(buf, 0)
	if pt, err := sess.recv.open(m); err != nil || string(pt) != "hello" {
		t.Fatalf("initiator to responder: %q, %v", pt, err)
	}
	buf = append(make([]byte, 0, 5+TagLen), "world"...)
	m, _ = sess.send.seal(buf, 0)
	if pt, err := isess.recv.open(m); err != nil || string(pt) != "world" {
		t.Fatalf("responder to initiator: %q, %v", pt, err)
	}
	if MaxMessageLen > 65535 {
		t.Errorf("MaxMessageLen %d exceeds the Noise limit", MaxMessageLen)
	}
}
