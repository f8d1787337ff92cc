package link

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/darkmatter/darkmatter/circuit/protover"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/testvec"
	"github.com/flynn/noise"
)

// linkVectorsFile is the JSON test vector file in spec/vectors shared with
// spec/links.md §7.
const linkVectorsFile = "links.json"

type linkVectors struct {
	Comment        string             `json:"comment"`
	ProloguePrefix string             `json:"prologue_prefix"`
	NetworkIDs     []networkIDVector  `json:"network_ids"`
	Handshakes     []handshakeVector  `json:"handshakes"`
	Transport      []transportVector  `json:"transport"`
	Hellos         []helloFieldVector `json:"hellos"`
}

type networkIDVector struct {
	Network string `json:"network"`
	ID      string `json:"id"`
}

type handshakeVector struct {
	Suite              string `json:"suite"`
	ProtocolName       string `json:"protocol_name"`
	Network            string `json:"network"`
	Flags              byte   `json:"flags"`
	InitiatorStatic    string `json:"initiator_static"`
	ResponderStatic    string `json:"responder_static"`
	InitiatorEphemeral string `json:"initiator_ephemeral"`
	ResponderEphemeral string `json:"responder_ephemeral"`
	ResponderProtocols string `json:"responder_protocols"`
	// Outputs.
	ResponderStaticPublic string `json:"responder_static_public"`
	Preamble              string `json:"preamble"`
	Prologue              string `json:"prologue"`
	Msg1                  string `json:"msg1"`
	Msg2                  string `json:"msg2"`
	ResponderHelloPayload string `json:"responder_hello_payload"`
	ResponderHelloFrame   string `json:"responder_hello_frame_sha256"`
}

type transportVector struct {
	Suite     string `json:"suite"`
	Key       string `json:"key"`
	Nonce     string `json:"nonce"` // 16 hex digits
	Plaintext string `json:"plaintext"`
	// Outputs.
	Ciphertext      string `json:"ciphertext"`
	RekeyedKey      string `json:"rekeyed_key"`
	CiphertextAfter string `json:"ciphertext_after_rekey"`
}

type helloFieldVector struct {
	Protocols  string `json:"protocols"`
	Descriptor string `json:"descriptor"`
	Payload    string `json:"payload"`
}

func generateLinkVectors() *linkVectors {
	v := &linkVectors{
		Comment: "darkmatter link vectors (spec/links.md §7). Hex unless noted. network_ids: network (UTF-8) -> " +
			"SHA-256(\"darkmatter network\\x00\" || network)[:8]. handshakes: X25519 private keys (clamped when " +
			"used) as inputs, the initiator proposes suite with flags; prologue = prologue_prefix || network || " +
			"preamble; responder_hello_frame_sha256 is the SHA-256 of the responder's first transport frame " +
			"(length | HELLO cell with responder_hello_payload, encrypted with nonce 0). transport: one " +
			"direction's cipher with key at counter nonce (a 64-bit integer in 16 hex digits) encrypts plaintext (empty ad), then REKEY (Noise " +
			"§11.3) gives rekeyed_key and the next message (nonce + 1) is ciphertext_after_rekey. hellos: " +
			"HELLO payloads (protocols in text form). Checked by overlay/link TestLinkVectors " +
			"(go test ./overlay/link -run TestLinkVectors -update rewrites this file).",
		ProloguePrefix: prologuePrefix,
	}
	for _, n := range []string{"darkmatter", "", "testnet"} {
		v.NetworkIDs = append(v.NetworkIDs, networkIDVector{Network: n})
	}
	for _, tc := range []struct {
		suite Suite
		proto string
	}{
		{SuiteChaChaPoly, "Link=1 LinkMove=1"},
		{SuiteAESGCM, "Link=1 LinkAES=1 LinkMove=1"},
	} {
		v.Handshakes = append(v.Handshakes, handshakeVector{
			Suite:              tc.suite.String(),
			ProtocolName:       tc.suite.ProtocolName(),
			Network:            "darkmatter",
			InitiatorStatic:    strings.Repeat("01", 32),
			ResponderStatic:    strings.Repeat("02", 32),
			InitiatorEphemeral: strings.Repeat("11", 32),
			ResponderEphemeral: strings.Repeat("22", 32),
			ResponderProtocols: tc.proto,
		})
		v.Transport = append(v.Transport, transportVector{
			Suite:     tc.suite.String(),
			Key:       hex.EncodeToString(testvec.Seq(0x40, 32)),
			Nonce:     "0102030405060708",
			Plaintext: hex.EncodeToString([]byte("darkmatter")),
		})
	}
	v.Hellos = []helloFieldVector{
		{Protocols: "Link=1"},
		{Protocols: "Link=1 Relay=1-2 LinkAES=1", Descriptor: hex.EncodeToString([]byte("descriptor"))},
	}
	return v
}

func suiteByName(t *testing.T, name string) Suite {
	for _, s := range []Suite{SuiteChaChaPoly, SuiteAESGCM} {
		if s.String() == name {
			return s
		}
	}
	t.Fatalf("unknown suite %q", name)
	return 0
}

// TestLinkVectors checks spec/vectors/links.json: network IDs, the
// handshake of each suite with fixed keys (also against flynn/noise's
// reference suites), the transport cipher with Rekey, and HELLO payloads.
func TestLinkVectors(t *testing.T) {
	v := testvec.LoadOrGenerate(t, linkVectorsFile, generateLinkVectors)
	testvec.Check(t, "prologue_prefix", &v.ProloguePrefix, prologuePrefix)
	for i := range v.NetworkIDs {
		nv := &v.NetworkIDs[i]
		id := NetworkID(nv.Network)
		testvec.CheckHex(t, "network ID of "+nv.Network, &nv.ID, id[:])
	}
	for i := range v.Handshakes {
		hv := &v.Handshakes[i]
		t.Run("handshake-"+hv.Suite, func(t *testing.T) { checkHandshakeVector(t, hv) })
	}
	for i := range v.Transport {
		tv := &v.Transport[i]
		t.Run("transport-"+tv.Suite, func(t *testing.T) { checkTransportVector(t, tv) })
	}
	for i := range v.Hellos {
		hv := &v.Hellos[i]
		set, err := protover.ParseString(hv.Protocols)
		if err != nil {
			t.Fatal(err)
		}
		h := hello{protocols: set, descriptor: testvec.Hex(t, hv.Descriptor)}
		b := appendHello(nil, h)
		testvec.CheckHex(t, "hello payload", &hv.Payload, b)
		got, err := parseHello(testvec.Hex(t, hv.Payload))
		if err != nil || !got.protocols.Equal(set) || !bytes.Equal(got.descriptor, h.descriptor) {
			t.Errorf("parseHello(%s) = %v %q, %v", hv.Payload, got.protocols, got.descriptor, err)
		}
	}
	if testvec.Update() && !t.Failed() {
		testvec.Save(t, linkVectorsFile, v)
	}
	checkSpecHasVectors(t, v)
}

func checkHandshakeVector(t *testing.T, hv *handshakeVector) {
	suite := suiteByName(t, hv.Suite)
	testvec.Check(t, "protocol_name", &hv.ProtocolName, suite.ProtocolName())
	iStatic := keys.LinkFromBytes([32]byte(testvec.Hex(t, hv.InitiatorStatic)))
	rStatic := keys.LinkFromBytes([32]byte(testvec.Hex(t, hv.ResponderStatic)))
	rProto, err := protover.ParseString(hv.ResponderProtocols)
	if err != nil {
		t.Fatal(err)
	}
	rAES := rProto.Supports(protover.LinkAES, 1)
	is, err := (&Config{Network: hv.Network, Static: iStatic, Suite: suite, SuiteRetry: hv.Flags&FlagSuiteRetry != 0,
		Rand: bytes.NewReader(testvec.Hex(t, hv.InitiatorEphemeral))}).settings()
	if err != nil {
		t.Fatal(err)
	}
	rs, err := (&Config{Network: hv.Network, Static: rStatic, Rand: bytes.NewReader(testvec.Hex(t, hv.ResponderEphemeral)),
		hardwareAES: func() bool { return rAES }}).settings()
	if err != nil {
		t.Fatal(err)
	}
	if !rs.protocols.Equal(rProto) {
		t.Fatalf("responder protocols %v, want %v", rs.protocols, rProto)
	}
	rpub := rStatic.Public()
	testvec.CheckHex(t, "responder_static_public", &hv.ResponderStaticPublic, rpub[:])

	p := is.preamble()
	pre := p.bytes()
	testvec.CheckHex(t, "preamble", &hv.Preamble, pre[:])
	parsed, err := parsePreamble(pre[:])
	if err != nil || parsed != p {
		t.Fatalf("parsePreamble = %+v, %v", parsed, err)
	}
	if reason, err := parsed.check(rs.netID, rAES); reason != 0 || err != nil {
		t.Fatalf("responder refuses the preamble: %d, %v", reason, err)
	}
	testvec.CheckHex(t, "prologue", &hv.Prologue, prologue(hv.Network, p))
	ini, msg1, err := startInitiator(is, p, rpub)
	if err != nil {
		t.Fatal(err)
	}
	testvec.CheckHex(t, "msg1", &hv.Msg1, msg1)
	rsess, msg2, err := respond(rs, parsed, msg1)
	if err != nil {
		t.Fatal(err)
	}
	testvec.CheckHex(t, "msg2", &hv.Msg2, msg2)
	isess, err := ini.finish(msg2, rpub)
	if err != nil {
		t.Fatal(err)
	}
	if isess.suite != suite || rsess.suite != suite || isess.peer != rpub || rsess.peer != iStatic.Public() {
		t.Fatal("sessions disagree")
	}
	testvec.CheckHex(t, "responder_hello_payload", &hv.ResponderHelloPayload, rs.hello)
	frame, err := appendHelloMessage(nil, rsess, rs.hello)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(frame)
	testvec.CheckHex(t, "responder_hello_frame_sha256", &hv.ResponderHelloFrame, sum[:])
	payload, err := openHello(isess, append([]byte{}, frame[FrameHeaderLen:]...))
	if err != nil || !bytes.Equal(payload, rs.hello) {
		t.Fatalf("initiator reads HELLO %x, %v", payload, err)
	}

	// flynn/noise's reference suite (x/crypto DH) gives the same messages.
	cipher := noise.CipherChaChaPoly
	if suite == SuiteAESGCM {
		cipher = noise.CipherAESGCM
	}
	ref := noise.NewCipherSuite(noise.DH25519, cipher, noise.HashBLAKE2s)
	if "Noise_IK_"+string(ref.Name()) != hv.ProtocolName {
		t.Fatalf("reference suite is %s", ref.Name())
	}
	ipriv, ipub := iStatic.Bytes(), iStatic.Public()
	rpriv := rStatic.Bytes()
	pro := testvec.Hex(t, hv.Prologue)
	hi, _ := noise.NewHandshakeState(noise.Config{CipherSuite: ref, Random: bytes.NewReader(testvec.Hex(t, hv.InitiatorEphemeral)),
		Pattern: noise.HandshakeIK, Initiator: true, Prologue: pro,
		StaticKeypair: noise.DHKey{Private: ipriv[:], Public: ipub[:]}, PeerStatic: rpub[:]})
	hr, _ := noise.NewHandshakeState(noise.Config{CipherSuite: ref, Random: bytes.NewReader(testvec.Hex(t, hv.ResponderEphemeral)),
		Pattern: noise.HandshakeIK, Prologue: pro,
		StaticKeypair: noise.DHKey{Private: rpriv[:], Public: rpub[:]}})
	m1, _, _, _ := hi.WriteMessage(nil, nil)
	if _, _, _, err := hr.ReadMessage(nil, m1); err != nil {
		t.Fatal(err)
	}
	m2, _, rsend, _ := hr.WriteMessage(nil, nil)
	if !bytes.Equal(m1, msg1) || !bytes.Equal(m2, msg2) {
		t.Fatal("the reference flynn/noise suite gives other messages")
	}
	want, err := rsend.Encrypt(nil, nil, helloCellBytes(rs.hello))
	if err != nil || !bytes.Equal(want, frame[FrameHeaderLen:]) {
		t.Fatalf("the reference cipher encrypts the HELLO differently (%v)", err)
	}
}

// helloCellBytes returns the plaintext HELLO cell carrying payload.
func helloCellBytes(payload []byte) []byte {
	b := make([]byte, 5, 4085)
	b[4] = 5
	b = append(b, byte(len(payload)>>8), byte(len(payload)))
	b = append(b, payload...)
	return b[:4085]
}

func checkTransportVector(t *testing.T, tv *transportVector) {
	suite := suiteByName(t, tv.Suite)
	key := [32]byte(testvec.Hex(t, tv.Key))
	pt := testvec.Hex(t, tv.Plaintext)
	nonce, err := strconv.ParseUint(tv.Nonce, 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	ours, err := newTransportCipher(suite, key, nonce)
	if err != nil {
		t.Fatal(err)
	}
	ref := noise.UnsafeNewCipherState(suite.noiseSuite(), key, nonce)
	ct, err := ours.seal(append([]byte{}, pt...), 0)
	if err != nil {
		t.Fatal(err)
	}
	testvec.CheckHex(t, "ciphertext", &tv.Ciphertext, ct)
	if want, _ := ref.Encrypt(nil, nil, pt); !bytes.Equal(ct, want) {
		t.Fatal("ciphertext differs from flynn/noise")
	}
	if err := ours.rekey(); err != nil {
		t.Fatal(err)
	}
	ref.Rekey()
	rk := ref.UnsafeKey()
	testvec.CheckHex(t, "rekeyed_key", &tv.RekeyedKey, rk[:])
	ct, err = ours.seal(append([]byte{}, pt...), 0)
	if err != nil {
		t.Fatal(err)
	}
	testvec.CheckHex(t, "ciphertext_after_rekey", &tv.CiphertextAfter, ct)
	if want, _ := ref.Encrypt(nil, nil, pt); !bytes.Equal(ct, want) {
		t.Fatal("ciphertext after rekey differs from flynn/noise")
	}
	// The cipher with the rekeyed key, at the next nonce, agrees.
	fresh, _ := newTransportCipher(suite, rk, nonce+1)
	if opened, err := fresh.open(ct); err != nil || !bytes.Equal(opened, pt) {
		t.Fatalf("open after rekey: %v", err)
	}
}

// checkSpecHasVectors checks that spec/links.md §7 shows the values of the
// vector file: every hex output appears in it (whitespace removed, so
// long values may be wrapped).
func checkSpecHasVectors(t *testing.T, v *linkVectors) {
	path, err := testvec.Path("../links.md")
	if err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	flat := regexp.MustCompile(`\s+`).ReplaceAllString(string(md), "")
	want := map[string]string{}
	for _, n := range v.NetworkIDs {
		want["network ID "+n.Network] = n.ID
	}
	for _, h := range v.Handshakes {
		for k, x := range map[string]string{"preamble": h.Preamble, "msg1": h.Msg1, "msg2": h.Msg2,
			"hello payload": h.ResponderHelloPayload, "hello frame hash": h.ResponderHelloFrame} {
			want[h.Suite+" "+k] = x
		}
	}
	for _, tr := range v.Transport {
		want[tr.Suite+" ciphertext"] = tr.Ciphertext
		want[tr.Suite+" rekeyed key"] = tr.RekeyedKey
		want[tr.Suite+" ciphertext after rekey"] = tr.CiphertextAfter
	}
	for _, h := range v.Hellos {
		want["hello "+h.Protocols] = h.Payload
	}
	for k, x := range want {
		if !strings.Contains(flat, x) {
			t.Errorf("spec/links.md §7 lacks %s %s", k, x)
		}
	}
}
