package relaylink

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/link"
)

func TestMsgRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte{0xab}, maxValue)
	for _, m := range []Msg{
		{Type: TypeReserve},
		{Type: TypeReservation, Status: StatusOK, Lifetime: time.Hour},
		{Type: TypeReservation, Status: StatusResource},
		{Type: TypeReservation, Status: StatusOK, Lifetime: (1<<32 - 1) * time.Second},
		{Type: TypeIncoming, Token: [TokenSize]byte{1, 2, 3, 15: 0xff}},
		{Type: TypePunch, Punch: []byte{1}},
		{Type: TypePunch, Punch: big},
	} {
		c, err := m.Cell()
		if err != nil {
			t.Fatalf("%+v: %v", m.Type, err)
		}
		if c.Circ() != 0 || c.Cmd() != cell.CmdNAT {
			t.Fatalf("cell on circuit %d, command %d", c.Circ(), c.Cmd())
		}
		got, err := ParseMsg(c.Body())
		if err != nil || !reflect.DeepEqual(got, m) {
			t.Fatalf("type %d: parsed %+v (%v)", m.Type, got.Type, err)
		}
		c.Free()
	}
	// A lifetime is sent in whole seconds.
	body := make([]byte, cell.BodyLen)
	m := Msg{Type: TypeReservation, Lifetime: 90*time.Second + 999*time.Millisecond}
	if err := m.Marshal(body); err != nil {
		t.Fatal(err)
	}
	if got, _ := ParseMsg(body); got.Lifetime != 90*time.Second {
		t.Fatalf("lifetime %v", got.Lifetime)
	}
	// Marshal clears what the body held before.
	for i := range body {
		body[i] = 0xff
	}
	(&Msg{Type: TypeReserve}).Marshal(body)
	if !bytes.Equal(body, append([]byte{TypeReserve}, make([]byte, cell.BodyLen-1)...)) {
		t.Fatal("RESERVE body not cleared")
	}
}

func TestMsgErrors(t *testing.T) {
	body := make([]byte, cell.BodyLen)
	for _, m := range []Msg{
		{Type: 0},
		{Type: 5},
		{Type: TypePunch},
		{Type: TypePunch, Punch: make([]byte, maxValue+1)},
	} {
		if err := m.Marshal(body); !errors.Is(err, ErrMalformed) {
			t.Errorf("Marshal of %d (%d punch bytes): %v", m.Type, len(m.Punch), err)
		}
		if _, err := m.Cell(); !errors.Is(err, ErrMalformed) {
			t.Errorf("Cell of %d: %v", m.Type, err)
		}
	}
	if err := (&Msg{Type: TypeIncoming}).Marshal(make([]byte, 3+TokenSize-1)); !errors.Is(err, ErrMalformed) {
		t.Errorf("Marshal into a short body: %v", err)
	}
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"empty", nil},
		{"two bytes", []byte{TypeReserve, 0}},
		{"value past the body", []byte{TypePunch, 0, 4, 1, 2, 3}},
		{"RESERVE with a value", []byte{TypeReserve, 0, 1, 0}},
		{"short RESERVATION", []byte{TypeReservation, 0, 4, 0, 0, 0, 0}},
		{"long RESERVATION", []byte{TypeReservation, 0, 6, 0, 0, 0, 0, 0, 0}},
		{"short INCOMING", append([]byte{TypeIncoming, 0, 15}, make([]byte, 15)...)},
		{"long INCOMING", append([]byte{TypeIncoming, 0, 17}, make([]byte, 17)...)},
		{"empty PUNCH", []byte{TypePunch, 0, 0}},
		{"type 0", []byte{0, 0, 0}},
		{"unknown type", []byte{9, 0, 1, 0}},
	} {
		if m, err := ParseMsg(tc.body); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: parsed %+v (%v)", tc.name, m, err)
		}
	}
	// Trailing bytes after the value are padding.
	if m, err := ParseMsg([]byte{TypeReserve, 0, 0, 7, 7}); err != nil || m.Type != TypeReserve {
		t.Errorf("RESERVE with trailing bytes: %+v (%v)", m, err)
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	netw := link.NetworkID("darkmatter")
	for _, h := range []Header{
		{Network: netw, Kind: KindConnect, Target: keys.LinkPublicKey{1, 2, 31: 3}},
		{Network: link.NetworkID("other"), Kind: KindAccept, Token: [TokenSize]byte{4, 15: 5}},
	} {
		b := h.Marshal()
		if len(b) != HeaderSize || !bytes.Equal(b[:4], []byte("DMR\x01")) {
			t.Fatalf("header %x", b)
		}
		got, err := ParseHeader(b)
		if err != nil || got != h {
			t.Fatalf("parsed %+v (%v), want %+v", got, err, h)
		}
		for _, n := range []int{0, HeaderSize - 1, HeaderSize + 1} {
			bb := append(bytes.Clone(b), 0)[:n]
			if _, err := ParseHeader(bb); !errors.Is(err, ErrMalformed) {
				t.Errorf("header of %d bytes: %v", n, err)
			}
		}
	}
	// A CONNECT carries no token.
	h := Header{Network: netw, Kind: KindConnect, Token: [TokenSize]byte{9}}
	if got, _ := ParseHeader(h.Marshal()); got.Token != ([TokenSize]byte{}) {
		t.Fatal("a CONNECT's token was sent")
	}
}

func TestStatusError(t *testing.T) {
	seen := map[string]bool{}
	for s := byte(1); s <= 6; s++ {
		err := statusError(s)
		if !errors.Is(err, ErrRefused) || seen[err.Error()] {
			t.Fatalf("status %d: %v", s, err)
		}
		seen[err.Error()] = true
	}
}
