package relaylink

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/testvec"
	"github.com/darkmatter/darkmatter/overlay/link"
)

// vectorsFile is the JSON test vector file of spec/nat.md §8.
const vectorsFile = "relaylink.json"

type relaylinkVectors struct {
	Comment  string      `json:"comment"`
	BodyLen  int         `json:"body_len"`
	Messages []vecMsg    `json:"messages"`
	Headers  []vecHeader `json:"headers"`
}

type vecMsg struct {
	Name      string `json:"name"`
	Type      byte   `json:"type"`
	Status    *byte  `json:"status,omitempty"` // RESERVATION only
	LifetimeS uint32 `json:"lifetime_s,omitempty"`
	Token     string `json:"token,omitempty"`
	Punch     string `json:"punch,omitempty"`
	Encoded   string `json:"encoded"` // the body's first bytes; the rest is zero
}

type vecHeader struct {
	Name      string `json:"name"`
	Network   string `json:"network"`
	NetworkID string `json:"network_id"`
	Kind      byte   `json:"kind"`
	Target    string `json:"target,omitempty"`
	Token     string `json:"token,omitempty"`
	Encoded   string `json:"encoded"`
}

func generateRelaylinkVectors() *relaylinkVectors {
	h := hex.EncodeToString
	return &relaylinkVectors{
		Comment: "darkmatter relayed link vectors (spec/nat.md §8). Hex unless noted. messages: the NAT link cell " +
			"(command 12, circuit 0) body: encoded is its first bytes, type (1) | value length (2) | value; the rest of " +
			"the body, up to body_len bytes, is zero. lifetime_s is in seconds. headers: the splice header " +
			"\"DMR\" | version 1 | network_id (the first 8 bytes of SHA-256(\"darkmatter network\" 00 | network), as in the link preamble) | kind " +
			"(1 CONNECT, 2 ACCEPT) | CONNECT: target link key (32); ACCEPT: token (16) | 16 zero. Checked by relaylink " +
			"TestVectors (go test ./overlay/relaylink -run TestVectors -update rewrites this file).",
		BodyLen: cell.BodyLen,
		Messages: []vecMsg{
			{Name: "reserve", Type: TypeReserve},
			{Name: "reservation", Type: TypeReservation, Status: new(byte(StatusOK)), LifetimeS: 3600},
			{Name: "reservation refused", Type: TypeReservation, Status: new(byte(StatusResource))},
			{Name: "incoming", Type: TypeIncoming, Token: h(testvec.Seq(0, 16))},
			{Name: "punch", Type: TypePunch, Punch: "010203"},
		},
		Headers: []vecHeader{
			{Name: "connect", Network: "darkmatter", Kind: KindConnect, Target: strings.Repeat("11", 32)},
			{Name: "accept", Network: "darkmatter", Kind: KindAccept, Token: strings.Repeat("22", 16)},
		},
	}
}

func (v *vecMsg) msg(t *testing.T) Msg {
	m := Msg{Type: v.Type, Lifetime: time.Duration(v.LifetimeS) * time.Second}
	if v.Status != nil {
		m.Status = *v.Status
	}
	if v.Token != "" {
		m.Token = [TokenSize]byte(testvec.Hex(t, v.Token))
	}
	if v.Punch != "" {
		m.Punch = testvec.Hex(t, v.Punch)
	}
	return m
}

func (v *vecHeader) header(t *testing.T) Header {
	h := Header{Network: link.NetworkID(v.Network), Kind: v.Kind}
	if v.Target != "" {
		h.Target = keys.LinkPublicKey(testvec.Hex(t, v.Target))
	}
	if v.Token != "" {
		h.Token = [TokenSize]byte(testvec.Hex(t, v.Token))
	}
	return h
}

func TestVectors(t *testing.T) {
	v := testvec.LoadOrGenerate(t, vectorsFile, generateRelaylinkVectors)
	if v.BodyLen != cell.BodyLen {
		t.Fatalf("body_len %d, cell.BodyLen %d", v.BodyLen, cell.BodyLen)
	}
	for i := range v.Messages {
		vm := &v.Messages[i]
		m := vm.msg(t)
		body := make([]byte, cell.BodyLen)
		if err := m.Marshal(body); err != nil {
			t.Fatalf("%s: %v", vm.Name, err)
		}
		n := 3 + (int(body[1])<<8 | int(body[2]))
		if !bytes.Equal(body[n:], make([]byte, cell.BodyLen-n)) {
			t.Fatalf("%s: padding not zero", vm.Name)
		}
		testvec.CheckHex(t, vm.Name, &vm.Encoded, body[:n])
		file := make([]byte, cell.BodyLen)
		copy(file, testvec.Hex(t, vm.Encoded))
		got, err := ParseMsg(file)
		if err != nil || !reflect.DeepEqual(got, m) {
			t.Fatalf("%s: the file's body parses to %+v (%v), want %+v", vm.Name, got, err, m)
		}
	}
	for i := range v.Headers {
		vh := &v.Headers[i]
		h := vh.header(t)
		testvec.CheckHex(t, vh.Name+" network ID", &vh.NetworkID, h.Network[:])
		testvec.CheckHex(t, vh.Name, &vh.Encoded, h.Marshal())
		got, err := ParseHeader(testvec.Hex(t, vh.Encoded))
		if err != nil || got != h {
			t.Fatalf("%s: the file's header parses to %+v (%v), want %+v", vh.Name, got, err, h)
		}
	}
	if testvec.Update() && !t.Failed() {
		testvec.Save(t, vectorsFile, v)
	}
}
