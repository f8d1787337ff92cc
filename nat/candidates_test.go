package nat

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

func TestCandidatesRoundTrip(t *testing.T) {
	c := Candidates{Nonce: [NonceSize]byte{1, 2, 3}, RTT: 1500 * time.Microsecond}
	for i := range MaxCandidates {
		if i%2 == 0 {
			c.Addrs = append(c.Addrs, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), uint16(1000+i)))
		} else {
			c.Addrs = append(c.Addrs, netip.MustParseAddrPort("[2001:db8::1]:9"))
		}
	}
	b, err := c.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back Candidates
	if err := back.UnmarshalBinary(b); err != nil || !reflect.DeepEqual(back, c) {
		t.Fatalf("round trip %+v (%v)", back, err)
	}
	// An IPv4-mapped address is encoded as IPv4.
	m := Candidates{Addrs: []netip.AddrPort{netip.MustParseAddrPort("[::ffff:10.0.0.1]:5")}}
	mb, _ := m.MarshalBinary()
	if err := back.UnmarshalBinary(mb); err != nil || back.Addrs[0] != netip.MustParseAddrPort("10.0.0.1:5") {
		t.Fatalf("mapped address decodes to %v (%v)", back.Addrs, err)
	}
	// RTT saturates and never goes negative.
	for rtt, want := range map[time.Duration]time.Duration{-time.Second: 0, 2 * time.Hour: 4294967295 * time.Microsecond} {
		b, _ := Candidates{RTT: rtt}.MarshalBinary()
		if back.UnmarshalBinary(b) != nil || back.RTT != want {
			t.Errorf("RTT %v encodes as %v, want %v", rtt, back.RTT, want)
		}
	}
}

func TestCandidatesRejects(t *testing.T) {
	c := Candidates{Addrs: make([]netip.AddrPort, MaxCandidates+1)}
	for i := range c.Addrs {
		c.Addrs[i] = netip.MustParseAddrPort("10.0.0.1:1")
	}
	if _, err := c.MarshalBinary(); !errors.Is(err, ErrTooManyCandidates) {
		t.Fatalf("9 candidates: %v", err)
	}
	for _, a := range []string{"0.0.0.0:1", "10.0.0.1:0", "[fe80::1%eth0]:1", "224.0.0.1:5"} {
		if _, err := (Candidates{Addrs: []netip.AddrPort{netip.MustParseAddrPort(a)}}).MarshalBinary(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", a, err)
		}
	}
	good, _ := Candidates{Addrs: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:1")}}.MarshalBinary()
	mapped := append(append([]byte(nil), good[:candidatesHeader]...), familyIPv6)
	mapped = append(mapped, netip.MustParseAddr("::ffff:10.0.0.1").AsSlice()...)
	mapped = append(mapped, 0, 1)
	bad := map[string][]byte{
		"empty":     nil,
		"version":   append([]byte{2}, good[1:]...),
		"truncated": good[:len(good)-1],
		"trailing":  append(append([]byte(nil), good...), 0),
		"family":    append(append(append([]byte(nil), good[:candidatesHeader]...), 5), good[candidatesHeader+1:]...),
		"count":     append(append(append([]byte(nil), good[:candidatesHeader-1]...), 9), good[candidatesHeader:]...),
		"4in6":      mapped,
		"port 0":    append(append([]byte(nil), good[:len(good)-2]...), 0, 0),
	}
	for name, b := range bad {
		var c Candidates
		if err := c.UnmarshalBinary(b); err == nil {
			t.Errorf("%s: %x accepted", name, b)
		} else if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooManyCandidates) {
			t.Errorf("%s: error %v without a sentinel", name, err)
		}
	}
	if _, _, err := ParseSignal(append([]byte{3}, good...)); !errors.Is(err, ErrMalformed) {
		t.Errorf("signal type 3: %v", err)
	}
}

func TestPunchPacket(t *testing.T) {
	p := PunchPacket{Ack: true, Nonce: [NonceSize]byte{7}, Sender: [SenderIDSize]byte{8}}
	b, _ := p.MarshalBinary()
	var back PunchPacket
	if len(b) != PunchPacketSize || !IsPunch(b) || IsSTUN(b) || back.UnmarshalBinary(b) != nil || back != p {
		t.Fatalf("punch packet %x decodes to %+v", b, back)
	}
	for _, bad := range [][]byte{nil, b[:PunchPacketSize-1], append(b, 0), append([]byte{0x0c}, b[1:]...)} {
		if err := back.UnmarshalBinary(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%x: %v", bad, err)
		}
	}
	if !bytes.Equal(b[1:1+NonceSize], p.Nonce[:]) {
		t.Fatal("nonce not at bytes 1..17")
	}
}
