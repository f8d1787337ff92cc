package cell

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/darkmatter/darkmatter/crypto/layer"
	"github.com/darkmatter/darkmatter/internal/testvec"
)

// cellVectorsFile is the JSON test vector file in spec/vectors shared with
// spec/cells.md.
const cellVectorsFile = "cells.json"

type cellVectors struct {
	Comment          string               `json:"comment"`
	Sizes            map[string]int       `json:"sizes"`
	Cells            []cellVector         `json:"cells"`
	RelayMessages    []relayMessageVector `json:"relay_messages"`
	BadRelayMessages []badVector          `json:"bad_relay_messages"`
	BadExtends       []badVector          `json:"bad_extends"`
	BadBegins        []badVector          `json:"bad_begins"`
	Targets          []targetVector       `json:"targets"`
	BadTargets       []string             `json:"bad_targets"`
}

type cellVector struct {
	Name    string  `json:"name"`
	Circ    uint32  `json:"circ_id"`
	Command uint8   `json:"command"`
	Payload *string `json:"payload,omitempty"`
	Reason  *uint8  `json:"reason,omitempty"`
	Encoded string  `json:"encoded"`
}

type relayMessageVector struct {
	Name    string        `json:"name"`
	Command uint8         `json:"command"`
	Stream  uint16        `json:"stream"`
	Begin   *beginVector  `json:"begin,omitempty"`
	Extend  *extendVector `json:"extend,omitempty"`
	Data    string        `json:"data"`
	Encoded string        `json:"encoded"`
}

type beginVector struct {
	Flags  uint8  `json:"flags"`
	Target string `json:"target"`
}

type extendVector struct {
	Identity  string `json:"identity"`
	Link      string `json:"link"`
	Addr      string `json:"addr"`
	Handshake string `json:"handshake"`
}

type targetVector struct {
	Target string `json:"target"`
	Host   string `json:"host"`
	Port   uint16 `json:"port"`
}

type badVector struct {
	Why     string `json:"why"`
	Encoded string `json:"encoded"`
}

// unhex is testvec.Hex, for the seed corpora in fuzz_test.go.
var unhex = testvec.Hex

func hexOf(b []byte) string { return hex.EncodeToString(b) }

func ptr[T any](v T) *T { return &v }

// generateCellVectors writes the inputs of every vector; TestCellVectors
// fills in the encodings. The CREATE, CREATED, EXTEND and EXTENDED
// handshakes are the messages of spec/vectors/onionhs.json, the EXTEND keys
// identity[0] and link[0] of spec/vectors/keys.json.
func generateCellVectors(t *testing.T) *cellVectors {
	var hs struct {
		Vectors []struct {
			ClientMessage string `json:"client_message"`
			RelayMessage  string `json:"relay_message"`
		} `json:"vectors"`
	}
	testvec.Load(t, "onionhs.json", &hs)
	if len(hs.Vectors) == 0 {
		t.Fatal("onionhs.json: no vectors")
	}
	clientMsg, relayMsg := hs.Vectors[0].ClientMessage, hs.Vectors[0].RelayMessage

	var v cellVectors
	v.Comment = "darkmatter cell vectors (spec/cells.md). Hex unless noted. 'encoded' is the start of the " +
		"encoding; every byte after it is zero: up to sizes.cell bytes for cells, up to sizes.message_area " +
		"bytes for relay messages (the plaintext message area of a RELAY body, before layer crypto). " +
		"'data' is the relay message's data field. bad_* entries must be rejected: relay messages by the " +
		"relay message decoder, extends and begins as the data of an EXTEND or BEGIN message (an EXTEND address " +
		"is an IP literal, spec/cells.md §3.4). targets are " +
		"BEGIN targets with the host and port they name; bad_targets must be rejected. Checked by " +
		"circuit/cell TestCellVectors (go test -run TestCellVectors -update rewrites this file)."
	v.Sizes = map[string]int{
		"cell": Size, "cell_header": HeaderLen, "body": BodyLen, "layer_header": layer.HeaderSize,
		"message_area": MessageLen, "relay_header": RelayHeaderLen, "max_data": MaxData,
	}
	type cellIn struct {
		name    string
		circ    uint32
		cmd     Command
		payload *string
		reason  *uint8
	}
	for _, c := range []cellIn{
		{"PADDING", 0, CmdPadding, nil, nil},
		{"CREATE (link initiator's first circuit)", 0x80000001, CmdCreate, ptr(clientMsg), nil},
		{"CREATED", 0x80000001, CmdCreated, ptr(relayMsg), nil},
		{"DESTROY (reason 2, authentication)", 0x80000001, CmdDestroy, nil, ptr(DestroyAuth)},
		{"DESTROY (reason 0, by the client; link responder's circuit)", 0x00000007, CmdDestroy, nil, ptr(DestroyNone)},
		{"HELLO (empty: not a relay)", 0, CmdHello, ptr(""), nil},
		{"HELLO (payload 'descriptor bytes')", 0, CmdHello, ptr(hexOf([]byte("descriptor bytes"))), nil},
		{"DIR_GET", 0, CmdDirGet, nil, nil},
		{"DIR_DESC", 0, CmdDirDesc, ptr(hexOf([]byte("descriptor bytes"))), nil},
		{"DIR_DONE", 0, CmdDirDone, nil, nil},
	} {
		v.Cells = append(v.Cells, cellVector{Name: c.name, Circ: c.circ, Command: uint8(c.cmd), Payload: c.payload, Reason: c.reason})
	}

	type relayIn struct {
		name   string
		cmd    RelayCmd
		stream uint16
		data   []byte
		begin  *Begin
		extend *Extend
	}
	ext := &Extend{
		Identity:  [32]byte(testvec.Hex(t, "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")),
		Link:      [32]byte(testvec.Hex(t, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")),
		Addr:      "192.0.2.10:9001",
		Handshake: testvec.Hex(t, clientMsg),
	}
	ext6 := *ext
	ext6.Addr = "tcp://[2001:db8::a]:9001"
	for _, r := range []relayIn{
		{name: "DATA", cmd: RelayData, stream: 1, data: []byte("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")},
		{name: "BEGIN example.com:443", cmd: RelayBegin, stream: 1, begin: &Begin{Target: "example.com:443"}},
		{name: "BEGIN [2001:db8::1]:80", cmd: RelayBegin, stream: 2, begin: &Begin{Target: "[2001:db8::1]:80"}},
		{name: "CONNECTED", cmd: RelayConnected, stream: 1},
		{name: "END (reason 3, connection refused)", cmd: RelayEnd, stream: 1, data: []byte{3}},
		{name: "END (reason 0, done)", cmd: RelayEnd, stream: 2, data: []byte{0}},
		{name: "SENDME (circuit)", cmd: RelaySendme, stream: 0},
		{name: "SENDME (stream 1)", cmd: RelaySendme, stream: 1},
		{name: "EXTEND", cmd: RelayExtend, stream: 0, extend: ext},
		{name: "EXTEND (scheme, IPv6)", cmd: RelayExtend, stream: 0, extend: &ext6},
		{name: "EXTENDED", cmd: RelayExtended, stream: 0, data: testvec.Hex(t, relayMsg)},
		{name: "DROP", cmd: RelayDrop, stream: 0},
	} {
		rv := relayMessageVector{Name: r.name, Command: uint8(r.cmd), Stream: r.stream, Data: hexOf(r.data)}
		if r.begin != nil {
			rv.Begin = &beginVector{r.begin.Flags, r.begin.Target}
		}
		if r.extend != nil {
			rv.Extend = &extendVector{hexOf(r.extend.Identity[:]), hexOf(r.extend.Link[:]), r.extend.Addr, hexOf(r.extend.Handshake)}
		}
		v.RelayMessages = append(v.RelayMessages, rv)
	}

	hdr := func(cmd byte, stream, n uint16) string {
		b := []byte{cmd}
		b = binary.BigEndian.AppendUint16(b, stream)
		return hexOf(binary.BigEndian.AppendUint16(b, n))
	}
	v.BadRelayMessages = []badVector{
		{"relay command 0", hdr(0, 1, 0)},
		{"length 3948 > max_data", hdr(1, 1, MaxData+1)},
		{"length 65535", hdr(1, 1, 0xffff)},
	}
	extendBytes := func(addrLen int, addr string, hsLen int, hsData []byte) string {
		b := make([]byte, 64)
		b = append(b, byte(addrLen))
		b = append(b, addr...)
		b = binary.BigEndian.AppendUint16(b, uint16(hsLen))
		return hexOf(append(b, hsData...))
	}
	v.BadExtends = []badVector{
		{"empty", ""},
		{"keys only, no address length", hexOf(make([]byte, 64))},
		{"address length 0", extendBytes(0, "", 0, nil)},
		{"address without port", extendBytes(10, "192.0.2.10", 0, nil)},
		{"address length beyond the data", extendBytes(200, "192.0.2.10:1", 0, nil)},
		{"handshake length 4, 3 bytes present", extendBytes(12, "192.0.2.10:1", 4, []byte{1, 2, 3})},
		{"handshake length 2, 3 bytes present", extendBytes(12, "192.0.2.10:1", 2, []byte{1, 2, 3})},
		{"no handshake length", extendBytes(12, "192.0.2.10:1", 0, nil)[:2*(64+1+12)]},
		{"address without host", extendBytes(5, ":7301", 0, nil)},
		{"address without host, with scheme", extendBytes(11, "tcp://:7301", 0, nil)},
		{"host name in brackets", extendBytes(11, "[relay]:80", 0, nil)},
		{"IPv4 address in brackets", extendBytes(16, "[192.0.2.10]:80", 0, nil)},
		{"host name (EXTEND takes IP literals only)", extendBytes(18, "relay.example:9001", 0, nil)},
		{"host name with scheme", extendBytes(24, "tcp://relay.example:9001", 0, nil)},
		{"IPv6 address with a zone", extendBytes(18, "[fe80::1%eth0]:80", 0, nil)},
		{"port 0", extendBytes(12, "192.0.2.10:0", 0, nil)},
		{"port with a leading zero", extendBytes(16, "192.0.2.10:09001", 0, nil)},
		{"upper-case scheme", extendBytes(21, "TCP://192.0.2.10:9001", 0, nil)},
	}
	begin := func(s string) string { return hexOf(append([]byte{0}, s...)) }
	v.BadBegins = []badVector{
		{"empty", ""},
		{"flags only", "00"},
		{"no port", begin("example.com")},
		{"port 0", begin("example.com:0")},
		{"port 65536", begin("example.com:65536")},
		{"service name for a port", begin("example.com:https")},
		{"empty host", begin(":443")},
		{"space in host", begin("exa mple.com:80")},
		{"NUL in host", begin("example.com\x00:80")},
		{"DEL in host", begin("example.com\x7f:80")},
		{"IPv6 without brackets", begin("2001:db8::1:80")},
		{"host name in brackets", begin("[example.com]:80")},
		{"junk in brackets", begin("[zzz]:80")},
		{"IPv4 address in brackets", begin("[192.0.2.1]:80")},
		{"host of 256 bytes", begin(strings.Repeat("a", 256) + ":80")},
	}
	for _, tg := range []struct {
		target string
		host   string
		port   uint16
	}{
		{"example.com:443", "example.com", 443},
		{"[2001:db8::1]:80", "2001:db8::1", 80},
		{"192.0.2.1:1", "192.0.2.1", 1},
		{"xn--bcher-kva.example:65535", "xn--bcher-kva.example", 65535},
		{strings.Repeat("a", 255) + ":80", strings.Repeat("a", 255), 80},
		{"[::ffff:192.0.2.1]:443", "::ffff:192.0.2.1", 443},
	} {
		v.Targets = append(v.Targets, targetVector{tg.target, tg.host, tg.port})
	}
	v.BadTargets = []string{"", "example.com", "example.com:", ":80", "example.com:0", "example.com:65536",
		"example.com:-1", "2001:db8::1:80", "[example.com]x:80", "a b:80", "tab\t:80",
		"[example.com]:80", "[zzz]:80", "[192.0.2.1]:80", "[]:80", "[fe80::1%eth0]:80", "a]b:80", "a[b:80"}
	return &v
}

// loadCellVectors reads spec/vectors/cells.json, for the fuzz seed corpora.
func loadCellVectors() (cellVectors, error) {
	var v cellVectors
	err := testvec.Read(cellVectorsFile, &v)
	return v, err
}

// TestCellVectors checks spec/vectors/cells.json. With -update it regenerates
// the file.
func TestCellVectors(t *testing.T) {
	v := testvec.LoadOrGenerate(t, cellVectorsFile, func() *cellVectors { return generateCellVectors(t) })
	for name, want := range map[string]int{
		"cell": Size, "cell_header": HeaderLen, "body": BodyLen, "layer_header": layer.HeaderSize,
		"message_area": MessageLen, "relay_header": RelayHeaderLen, "max_data": MaxData,
	} {
		if v.Sizes[name] != want {
			t.Errorf("sizes.%s = %d, want %d", name, v.Sizes[name], want)
		}
	}
	// meaningful returns b without its trailing zeros, but at least n bytes.
	meaningful := func(b []byte, n int) []byte {
		end := len(b)
		for end > n && b[end-1] == 0 {
			end--
		}
		return b[:end]
	}

	for i := range v.Cells {
		cv := &v.Cells[i]
		what := fmt.Sprintf("cell %q", cv.Name)
		c := New(cv.Circ, Command(cv.Command))
		var payload []byte
		n := HeaderLen
		switch {
		case cv.Payload != nil:
			payload = testvec.Hex(t, *cv.Payload)
			if err := c.SetPayload(payload); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			n += 2 + len(payload)
		case cv.Reason != nil:
			c.Body()[0] = *cv.Reason
			n++
		}
		wire := c.Bytes()
		if len(wire) != Size {
			t.Fatalf("%s: %d bytes", what, len(wire))
		}
		testvec.CheckHex(t, what, &cv.Encoded, meaningful(wire, n))
		c.Free()

		// Decode the vector's bytes.
		enc := testvec.Hex(t, cv.Encoded)
		full := make([]byte, Size)
		copy(full, enc)
		p, err := Parse(full)
		if err != nil {
			t.Fatalf("%s: Parse: %v", what, err)
		}
		if p.Circ() != cv.Circ || p.Cmd() != Command(cv.Command) || !bytes.Equal(p.Bytes(), full) {
			t.Errorf("%s: Parse gives circ %#x cmd %v", what, p.Circ(), p.Cmd())
		}
		if cv.Payload != nil {
			if got, err := p.Payload(); err != nil || !bytes.Equal(got, payload) {
				t.Errorf("%s: Payload = %x, %v", what, got, err)
			}
		}
		if cv.Reason != nil && p.Body()[0] != *cv.Reason {
			t.Errorf("%s: reason %d", what, p.Body()[0])
		}
		p.Free()
	}

	for i := range v.RelayMessages {
		rv := &v.RelayMessages[i]
		what := fmt.Sprintf("relay message %q", rv.Name)
		data := testvec.Hex(t, rv.Data)
		switch {
		case rv.Begin != nil:
			b := Begin{Flags: rv.Begin.Flags, Target: rv.Begin.Target}
			enc, err := b.Marshal()
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			testvec.CheckHex(t, what+" data", &rv.Data, enc)
			data = enc
			got, err := ParseBegin(enc)
			if err != nil || *got != b {
				t.Errorf("%s: ParseBegin = %+v, %v", what, got, err)
			}
		case rv.Extend != nil:
			e := Extend{
				Identity:  [32]byte(testvec.Hex(t, rv.Extend.Identity)),
				Link:      [32]byte(testvec.Hex(t, rv.Extend.Link)),
				Addr:      rv.Extend.Addr,
				Handshake: testvec.Hex(t, rv.Extend.Handshake),
			}
			enc, err := e.Marshal()
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			testvec.CheckHex(t, what+" data", &rv.Data, enc)
			data = enc
			got, err := ParseExtend(enc)
			if err != nil || got.Identity != e.Identity || got.Link != e.Link || got.Addr != e.Addr || !bytes.Equal(got.Handshake, e.Handshake) {
				t.Errorf("%s: ParseExtend = %+v, %v", what, got, err)
			}
		}
		body := newBody()
		if err := PutRelay(body, RelayCmd(rv.Command), rv.Stream, data); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		testvec.CheckHex(t, what, &rv.Encoded, meaningful(body[:MessageLen], RelayHeaderLen+len(data)))

		area := make([]byte, BodyLen)
		copy(area, testvec.Hex(t, rv.Encoded))
		m, err := ParseRelay(area)
		if err != nil || m.Cmd != RelayCmd(rv.Command) || m.Stream != rv.Stream || !bytes.Equal(m.Data, data) {
			t.Errorf("%s: ParseRelay = %+v, %v", what, m, err)
		}
	}

	for _, bv := range v.BadRelayMessages {
		area := make([]byte, BodyLen)
		copy(area, testvec.Hex(t, bv.Encoded))
		if m, err := ParseRelay(area); err == nil {
			t.Errorf("bad relay message %q accepted: %+v", bv.Why, m)
		}
	}
	for _, bv := range v.BadExtends {
		if e, err := ParseExtend(testvec.Hex(t, bv.Encoded)); err == nil {
			t.Errorf("bad EXTEND %q accepted: %+v", bv.Why, e)
		}
	}
	for _, bv := range v.BadBegins {
		if b, err := ParseBegin(testvec.Hex(t, bv.Encoded)); err == nil {
			t.Errorf("bad BEGIN %q accepted: %+v", bv.Why, b)
		}
	}
	for _, tv := range v.Targets {
		got, err := SplitTarget(tv.Target)
		if err != nil || got != (Target{tv.Host, tv.Port}) {
			t.Errorf("SplitTarget(%q) = %+v, %v; want %s port %d", tv.Target, got, err, tv.Host, tv.Port)
		}
	}
	for _, s := range v.BadTargets {
		if got, err := SplitTarget(s); err == nil {
			t.Errorf("SplitTarget(%q) accepted: %+v", s, got)
		}
	}

	if testvec.Update() && !t.Failed() {
		testvec.Save(t, cellVectorsFile, v)
	}
}

// newBody returns a cell body with the spare capacity the layer needs.
func newBody() []byte { return make([]byte, BodyLen, BodyLen+layer.Spare) }

func TestConstants(t *testing.T) {
	if Size != 4085 || BodyLen != 4080 || MessageLen != 3952 || MaxData != 3947 {
		t.Fatalf("Size %d BodyLen %d MessageLen %d MaxData %d", Size, BodyLen, MessageLen, MaxData)
	}
	if BodyLen%layer.TagSize != 0 {
		t.Fatal("body is not whole AES blocks")
	}
	// 16 cells and the Noise tag fit one 65535-byte Noise message.
	if 16*Size+16 > 65535 || 17*Size+16 <= 65535 {
		t.Fatal("16 cells do not exactly fill a Noise message")
	}
	if err := layer.CheckBody(New(1, CmdRelay).Body()); err != nil {
		t.Fatalf("cell body rejected by the layer: %v", err)
	}
}

func TestNewAndParse(t *testing.T) {
	c := New(0xdeadbeef, CmdRelay)
	defer c.Free()
	if c.Circ() != 0xdeadbeef || c.Cmd() != CmdRelay {
		t.Fatalf("circ %#x cmd %v", c.Circ(), c.Cmd())
	}
	if !bytes.Equal(c.Bytes()[:HeaderLen], []byte{0xde, 0xad, 0xbe, 0xef, 3}) {
		t.Fatalf("header %x", c.Bytes()[:HeaderLen])
	}
	body := c.Body()
	if len(body) != BodyLen || cap(body)-len(body) != layer.Spare {
		t.Fatalf("body len %d cap %d", len(body), cap(body))
	}
	for i := range body {
		body[i] = byte(i)
	}
	c.SetCirc(7)
	p, err := Parse(c.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.Bytes(), c.Bytes()) || p.Circ() != 7 {
		t.Fatal("Parse did not copy the cell")
	}
	// A pooled cell comes back zeroed, spare bytes included.
	p.Buf[len(p.Buf)-1] = 0xff
	p.Free()
	for i := 0; i < 10; i++ {
		q := New(1, CmdPadding)
		for j, b := range q.Buf[HeaderLen:] {
			if b != 0 {
				t.Fatalf("New: byte %d not zero", HeaderLen+j)
			}
		}
		q.Free()
	}
}

func TestParseErrors(t *testing.T) {
	for _, n := range []int{0, 1, Size - 1, Size + 1} {
		if _, err := Parse(make([]byte, n)); !errors.Is(err, ErrShort) {
			t.Errorf("Parse(%d bytes) = %v", n, err)
		}
	}
	b := make([]byte, Size)
	for cmd := 0; cmd < 256; cmd++ {
		b[4] = byte(cmd)
		c, err := Parse(b)
		if cmd <= int(maxCommand) {
			if err != nil {
				t.Errorf("command %d: %v", cmd, err)
			} else {
				c.Free()
			}
		} else if !errors.Is(err, ErrCommand) {
			t.Errorf("command %d accepted: %v", cmd, err)
		}
	}
}

func TestPayload(t *testing.T) {
	c := New(1, CmdCreate)
	defer c.Free()
	for _, n := range []int{0, 1, 1136, BodyLen - 2} {
		p := bytes.Repeat([]byte{0xab}, n)
		if err := c.SetPayload(p); err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		got, err := c.Payload()
		if err != nil || !bytes.Equal(got, p) {
			t.Fatalf("%d bytes: got %d, %v", n, len(got), err)
		}
	}
	if err := c.SetPayload(make([]byte, BodyLen-1)); err == nil {
		t.Fatal("payload of BodyLen-1 bytes accepted")
	}
	binary.BigEndian.PutUint16(c.Body(), BodyLen-1)
	if _, err := c.Payload(); err == nil {
		t.Fatal("length field beyond the body accepted")
	}
}

func TestRelayRoundTrip(t *testing.T) {
	body := newBody()
	for i := range body {
		body[i] = 0xee // PutRelay must zero the rest of the message area
	}
	for _, n := range []int{0, 1, 100, MaxData} {
		data := bytes.Repeat([]byte{0x5a}, n)
		if err := PutRelay(body, RelayData, 0xbeef, data); err != nil {
			t.Fatal(err)
		}
		for i := RelayHeaderLen + n; i < MessageLen; i++ {
			if body[i] != 0 {
				t.Fatalf("n=%d: padding byte %d is %#x", n, i, body[i])
			}
		}
		m, err := ParseRelay(body)
		if err != nil || m.Cmd != RelayData || m.Stream != 0xbeef || !bytes.Equal(m.Data, data) {
			t.Fatalf("n=%d: %+v, %v", n, m, err)
		}
	}
	if err := PutRelay(body, RelayData, 1, make([]byte, MaxData+1)); !errors.Is(err, ErrRelayLength) {
		t.Fatalf("MaxData+1: %v", err)
	}
	if _, err := ParseRelay(body[:MessageLen-1]); !errors.Is(err, ErrShort) {
		t.Fatalf("short body: %v", err)
	}
	// The message area is enough: the layer header is not looked at.
	if _, err := ParseRelay(body[:MessageLen]); err != nil {
		t.Fatal(err)
	}
}

func TestExtendRoundTrip(t *testing.T) {
	e := Extend{Addr: "[2001:db8::7]:9001", Handshake: bytes.Repeat([]byte{7}, 1136)}
	for i := range e.Identity {
		e.Identity[i], e.Link[i] = byte(i), byte(255-i)
	}
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 32+32+1+len(e.Addr)+2+1136 {
		t.Fatalf("%d bytes", len(b))
	}
	got, err := ParseExtend(b)
	if err != nil || got.Identity != e.Identity || got.Link != e.Link || got.Addr != e.Addr || !bytes.Equal(got.Handshake, e.Handshake) {
		t.Fatalf("%+v, %v", got, err)
	}
	// The largest handshake that still fits one relay message.
	e.Handshake = make([]byte, MaxData-(64+1+len(e.Addr)+2))
	if _, err := e.Marshal(); err != nil {
		t.Fatal(err)
	}
	e.Handshake = append(e.Handshake, 0)
	if _, err := e.Marshal(); err == nil {
		t.Fatal("EXTEND beyond MaxData accepted")
	}
	for _, addr := range []string{"", strings.Repeat("a", 256)} {
		e := Extend{Addr: addr}
		if _, err := e.Marshal(); err == nil {
			t.Fatalf("address of %d bytes accepted", len(addr))
		}
	}
}

func TestBeginRoundTrip(t *testing.T) {
	for _, target := range []string{"example.com:443", "[::1]:22", "10.0.0.1:65535"} {
		b := Begin{Flags: 0x80, Target: target}
		enc, err := b.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseBegin(enc)
		if err != nil || *got != b {
			t.Fatalf("%q: %+v, %v", target, got, err)
		}
	}
	if _, err := (&Begin{Target: "nope"}).Marshal(); err == nil {
		t.Fatal("bad target marshalled")
	}
}

func TestStrings(t *testing.T) {
	for cmd, want := range map[Command]string{CmdPadding: "PADDING", CmdCreate: "CREATE", CmdCreated: "CREATED",
		CmdRelay: "RELAY", CmdDestroy: "DESTROY", CmdHello: "HELLO", CmdDirGet: "DIR_GET", CmdDirDesc: "DIR_DESC",
		CmdDirDone: "DIR_DONE", CmdRekey: "REKEY", CmdGossip: "GOSSIP", CmdDHT: "DHT", CmdNAT: "NAT", CmdMove: "MOVE", 14: "CMD(14)"} {
		if cmd.String() != want {
			t.Errorf("%d: %q", cmd, cmd.String())
		}
	}
	for cmd, want := range map[RelayCmd]string{0: "RELAY(0)", RelayData: "DATA", RelayBegin: "BEGIN",
		RelayConnected: "CONNECTED", RelayEnd: "END", RelaySendme: "SENDME", RelayExtend: "EXTEND",
		RelayExtended: "EXTENDED", RelayDrop: "DROP", RelayBeginDir: "BEGIN_DIR", RelayE2E: "E2E", RelayBeginDHT: "BEGIN_DHT",
		RelayEstablishIntro: "ESTABLISH_INTRO", RelayIntroEstablished: "INTRO_ESTABLISHED", RelayIntroduce1: "INTRODUCE1",
		RelayIntroduce2: "INTRODUCE2", RelayIntroduceAck: "INTRODUCE_ACK", RelayBeginCompute: "BEGIN_COMPUTE", 22: "RELAY(22)", 200: "RELAY(200)"} {
		if cmd.String() != want {
			t.Errorf("%d: %q", cmd, cmd.String())
		}
	}
}
