package link

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/flynn/noise"
)

// constReader returns b forever.
type constReader byte

func (r constReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// TestHandshakeVector checks the handshake vector in spec/links.md §6:
// fixed static and ephemeral keys give fixed messages.
func TestHandshakeVector(t *testing.T) {
	iStatic := keys.LinkFromBytes([32]byte(bytes.Repeat([]byte{0x01}, 32)))
	rStatic := keys.LinkFromBytes([32]byte(bytes.Repeat([]byte{0x02}, 32)))
	is, _ := (&Config{Static: iStatic, Rand: constReader(0x11)}).settings()
	rs, _ := (&Config{Static: rStatic, Rand: constReader(0x22)}).settings()

	ini, msg1, err := startInitiator(is, rStatic.Public())
	if err != nil {
		t.Fatal(err)
	}
	rsess, msg2, err := respond(rs, msg1)
	if err != nil {
		t.Fatal(err)
	}
	isess, err := ini.finish(msg2, rStatic.Public())
	if err != nil {
		t.Fatal(err)
	}
	hello, err := appendHello(nil, rsess, nil)
	if err != nil {
		t.Fatal(err)
	}
	helloHash := sha256.Sum256(hello)
	if _, err := exchangeHelloOpen(isess, hello); err != nil {
		t.Fatal(err)
	}

	want := map[string]string{
		"responder static public":       "ce8d3ad1ccb633ec7b70c17814a5c76ecd029685050d344745ba05870e587d59",
		"msg1":                          "7b4e909bbe7ffe44c465a220037d608ee35897d31ef972f07f74892cb0f73f13ee8ffd39f5c7b328f743b51b3968770ca8ab56d0dfb64fe53f84b9c7e7eb26b5991e3b74570981227256aa2858ce344f0a2d8d483b959320c9f63ba1eb3b946e",
		"msg2":                          "0faa684ed28867b97f4a6a2dee5df8ce974e76b7018e3f22a1c4cf2678570f20d976bc6d7fbd758a4cfef295ee47007e",
		"sha256(responder HELLO frame)": "8c3d9551f8387782e481788220ec5460e255c0777e0d435fe7a07710a85f2e2d",
	}
	got := map[string]string{
		"responder static public":       hex.EncodeToString(func() []byte { p := rStatic.Public(); return p[:] }()),
		"msg1":                          hex.EncodeToString(msg1),
		"msg2":                          hex.EncodeToString(msg2),
		"sha256(responder HELLO frame)": hex.EncodeToString(helloHash[:]),
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %s, want %s", k, got[k], w)
		}
	}

	// flynn/noise's reference suite (x/crypto DH) gives the same messages.
	suite := noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashBLAKE2s)
	ipriv, ipub := iStatic.Bytes(), iStatic.Public()
	rpriv, rpub := rStatic.Bytes(), rStatic.Public()
	hi, _ := noise.NewHandshakeState(noise.Config{CipherSuite: suite, Random: constReader(0x11),
		Pattern: noise.HandshakeIK, Initiator: true, Prologue: []byte("darkmatter link v1\x00darkmatter"),
		StaticKeypair: noise.DHKey{Private: ipriv[:], Public: ipub[:]}, PeerStatic: rpub[:]})
	hr, _ := noise.NewHandshakeState(noise.Config{CipherSuite: suite, Random: constReader(0x22),
		Pattern: noise.HandshakeIK, Prologue: []byte("darkmatter link v1\x00darkmatter"),
		StaticKeypair: noise.DHKey{Private: rpriv[:], Public: rpub[:]}})
	m1, _, _, _ := hi.WriteMessage(nil, nil)
	if _, _, _, err := hr.ReadMessage(nil, m1); err != nil {
		t.Fatal(err)
	}
	m2, _, _, _ := hr.WriteMessage(nil, nil)
	if !bytes.Equal(m1, msg1) || !bytes.Equal(m2, msg2) {
		t.Error("reference flynn/noise suite gives other messages")
	}
}

// exchangeHelloOpen decrypts a HELLO frame with sess.
func exchangeHelloOpen(sess *session, frame []byte) ([]byte, error) {
	return sess.recv.open(append([]byte{}, frame[FrameHeaderLen:]...))
}
