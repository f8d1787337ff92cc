package nat

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pion/stun/v3"

	"github.com/darkmatter/darkmatter/nat/natsim"
)

// ask sends raw to dst from pc and returns the answer and who sent it, or
// nil when none comes within a second (virtual time under synctest).
func ask(t *testing.T, pc net.PacketConn, dst netip.AddrPort, raw []byte) ([]byte, netip.AddrPort) {
	t.Helper()
	if _, err := pc.WriteTo(raw, udpAddr(dst)); err != nil {
		t.Fatal(err)
	}
	pc.SetReadDeadline(time.Now().Add(time.Second))
	defer pc.SetReadDeadline(time.Time{})
	buf := make([]byte, 1500)
	n, from, err := pc.ReadFrom(buf)
	if err != nil {
		if isTimeout(err) {
			return nil, netip.AddrPort{}
		}
		t.Fatal(err)
	}
	src, _ := AddrPortOf(from)
	return buf[:n], src
}

func request(t *testing.T, setters ...stun.Setter) []byte {
	t.Helper()
	m, err := stun.Build(append([]stun.Setter{stun.TransactionID, stun.BindingRequest}, setters...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m.Raw
}

func decodeAnswer(t *testing.T, b []byte) *stun.Message {
	t.Helper()
	m, ok := decodeSTUN(b)
	if !ok {
		t.Fatalf("answer %x is not STUN", b)
	}
	return m
}

// runServer runs one test in a bubble with a full RFC 5780 server and a
// public client socket.
func runServer(t *testing.T, cfg ServerConfig, client netip.Addr, f func(t *testing.T, srv netip.AddrPort, s *Server, pc net.PacketConn)) {
	synctest.Test(t, func(t *testing.T) {
		n := natsim.NewNetwork()
		srv, s, stop := startSTUN(t, n, stunA1, stunA2, true, cfg)
		defer stop()
		h, err := n.NewHost(client)
		if err != nil {
			t.Fatal(err)
		}
		pc := mustListen(t, h, ":4000")
		defer pc.Close()
		f(t, srv, s, pc)
	})
}

func TestServerAnswersBinding(t *testing.T) {
	runServer(t, ServerConfig{}, ip("192.0.2.7"), func(t *testing.T, srv netip.AddrPort, _ *Server, pc net.PacketConn) {
		req := request(t, padding(requestPadding))
		out, from := ask(t, pc, srv, req)
		m := decodeAnswer(t, out)
		if m.Type != stun.BindingSuccess || from != srv || len(out) > MaxAnswerFactor*len(req) {
			t.Fatalf("answer %v from %v, %d bytes for %d", m.Type, from, len(out), len(req))
		}
		var xa stun.XORMappedAddress
		var ma stun.MappedAddress
		var ro stun.ResponseOrigin
		var oa stun.OtherAddress
		for _, err := range []error{xa.GetFrom(m), ma.GetFrom(m), ro.GetFrom(m), oa.GetFrom(m)} {
			if err != nil {
				t.Fatal(err)
			}
		}
		want := netip.MustParseAddrPort("192.0.2.7:4000")
		if toAddrPort(xa.IP, xa.Port) != want || toAddrPort(ma.IP, ma.Port) != want {
			t.Fatalf("mapped %v / %v, want %v", xa, ma, want)
		}
		if toAddrPort(ro.IP, ro.Port) != srv || toAddrPort(oa.IP, oa.Port) != netip.AddrPortFrom(stunA2, stunP2) {
			t.Fatalf("RESPONSE-ORIGIN %v OTHER-ADDRESS %v", ro, oa)
		}
		if m.Contains(stun.AttrSoftware) || m.Contains(stun.AttrFingerprint) {
			t.Fatal("the answer fingerprints the server")
		}
	})
}

func TestServerChangeRequest(t *testing.T) {
	runServer(t, ServerConfig{}, ip("192.0.2.7"), func(t *testing.T, srv netip.AddrPort, _ *Server, pc net.PacketConn) {
		for _, c := range []struct {
			change changeRequest
			want   netip.AddrPort
		}{
			{changeRequest{}, srv},
			{changeRequest{port: true}, netip.AddrPortFrom(stunA1, stunP2)},
			{changeRequest{ip: true}, netip.AddrPortFrom(stunA2, stunP1)},
			{changeRequest{ip: true, port: true}, netip.AddrPortFrom(stunA2, stunP2)},
		} {
			out, from := ask(t, pc, srv, request(t, c.change, padding(requestPadding)))
			if out == nil || from != c.want {
				t.Fatalf("change %+v answered from %v, want %v", c.change, from, c.want)
			}
			var ro stun.ResponseOrigin
			if err := ro.GetFrom(decodeAnswer(t, out)); err != nil || toAddrPort(ro.IP, ro.Port) != c.want {
				t.Fatalf("change %+v: RESPONSE-ORIGIN %v (%v)", c.change, ro, err)
			}
		}
		// A request to an alternate socket is answered from it.
		alt := netip.AddrPortFrom(stunA2, stunP2)
		if _, from := ask(t, pc, alt, request(t)); from != alt {
			t.Fatalf("request to %v answered from %v", alt, from)
		}
	})
}

// Without alternate sockets CHANGE-REQUEST gets 420 listing it (RFC 5780
// §6.1), as does an unknown comprehension-required attribute.
func TestServerRefusesWhatItCannotDo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := natsim.NewNetwork()
		srv, _, stop := startSTUN(t, n, stunA1, netip.Addr{}, false, ServerConfig{})
		defer stop()
		h, _ := n.NewHost(ip("192.0.2.7"))
		pc := mustListen(t, h, ":4000")
		defer pc.Close()
		for _, c := range []struct {
			setter stun.Setter
			attr   stun.AttrType
		}{
			{changeRequest{port: true}, stun.AttrChangeRequest},
			{stun.RawAttribute{Type: stun.AttrResponsePort, Value: []byte{0, 80, 0, 0}}, stun.AttrResponsePort},
		} {
			out, from := ask(t, pc, srv, request(t, c.setter))
			m := decodeAnswer(t, out)
			var ec stun.ErrorCodeAttribute
			var ua stun.UnknownAttributes
			if m.Type != stun.BindingError || from != srv || ec.GetFrom(m) != nil || ec.Code != stun.CodeUnknownAttribute ||
				ua.GetFrom(m) != nil || len(ua) != 1 || ua[0] != c.attr {
				t.Fatalf("%v: answer %v code %v unknown %v", c.attr, m.Type, ec.Code, ua)
			}
		}
		// Comprehension-optional attributes are ignored.
		out, _ := ask(t, pc, srv, request(t, stun.NewSoftware("x"), stun.Fingerprint))
		if decodeAnswer(t, out).Type != stun.BindingSuccess {
			t.Fatal("optional attributes were refused")
		}
	})
}

func TestServerIgnoresGarbage(t *testing.T) {
	runServer(t, ServerConfig{}, ip("192.0.2.7"), func(t *testing.T, srv netip.AddrPort, _ *Server, pc net.PacketConn) {
		valid := request(t)
		success := stun.MustBuild(stun.TransactionID, stun.BindingSuccess).Raw
		indication := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodBinding, stun.ClassIndication)).Raw
		allocate := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest)).Raw
		badChange := request(t, stun.RawAttribute{Type: stun.AttrChangeRequest, Value: []byte{0, 0, 4}})
		for name, b := range map[string][]byte{
			"empty":          {},
			"quic-like":      append([]byte{0xc0}, make([]byte, 40)...),
			"truncated":      valid[:19],
			"trailing":       append(append([]byte(nil), valid...), 0),
			"short attr":     append(append([]byte(nil), valid[:2]...), append([]byte{0, 4}, append(valid[4:20], 0, 1, 0)...)...),
			"success":        success,
			"indication":     indication,
			"allocate":       allocate,
			"bad change":     badChange,
			"punch packet":   make([]byte, PunchPacketSize),
			"oversized junk": make([]byte, 1400),
		} {
			if out, _ := ask(t, pc, srv, b); out != nil {
				t.Errorf("%s: answered %x", name, out)
			}
		}
		if out, _ := ask(t, pc, srv, valid); out == nil {
			t.Fatal("the server stopped answering after garbage")
		}
	})
}

// Answers never exceed MaxAnswerFactor times the request: an unpadded
// request still gets XOR-MAPPED-ADDRESS, the rest dropped to fit.
func TestServerAnswerSizeBound(t *testing.T) {
	for _, client := range []netip.Addr{ip("192.0.2.7"), ip("2001:db8::7")} {
		runServer(t, ServerConfig{}, client, func(t *testing.T, srv netip.AddrPort, _ *Server, pc net.PacketConn) {
			for _, pad := range []int{0, 4, 8, 16, 100} {
				var req []byte
				if pad == 0 {
					req = request(t)
				} else {
					req = request(t, padding(pad))
				}
				out, _ := ask(t, pc, srv, req)
				if out == nil || len(out) > MaxAnswerFactor*len(req) {
					t.Fatalf("%v pad %d: %d-byte answer to %d bytes", client, pad, len(out), len(req))
				}
				var xa stun.XORMappedAddress
				if err := xa.GetFrom(decodeAnswer(t, out)); err != nil {
					t.Fatalf("%v pad %d: no XOR-MAPPED-ADDRESS: %v", client, pad, err)
				}
			}
		})
	}
}

// A flood from one (spoofable) source IP gets at most the burst at once,
// while another client is still answered.
func TestServerRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := natsim.NewNetwork()
		srv, s, stop := startSTUN(t, n, stunA1, stunA2, true, ServerConfig{Rate: 20, Burst: 40})
		defer stop()
		victim, _ := n.NewHost(ip("192.0.2.66"))
		flood := mustListen(t, victim, ":53")
		defer flood.Close()
		legit, _ := n.NewHost(ip("192.0.2.7"))
		pc := mustListen(t, legit, ":4000")
		defer pc.Close()
		const sent = 100 // below the socket queue of natsim
		for range sent {
			flood.WriteTo(request(t), udpAddr(srv))
		}
		synctest.Wait()
		answers := 0
		for {
			flood.SetReadDeadline(time.Now().Add(time.Millisecond))
			if _, _, err := flood.ReadFrom(make([]byte, 1500)); err != nil {
				break
			}
			answers++
		}
		if answers != 40 || s.Dropped() != sent-40 {
			t.Fatalf("%d answers and %d drops for %d requests at once, want the burst of 40", answers, s.Dropped(), sent)
		}
		if out, _ := ask(t, pc, srv, request(t)); out == nil {
			t.Fatal("a legitimate client was refused during the flood")
		}
		time.Sleep(time.Second) // virtual: refills 20 tokens
		for range sent {
			flood.WriteTo(request(t), udpAddr(srv))
		}
		synctest.Wait()
		answers = 0
		for {
			flood.SetReadDeadline(time.Now().Add(time.Millisecond))
			if _, _, err := flood.ReadFrom(make([]byte, 1500)); err != nil {
				break
			}
			answers++
		}
		if answers != 20 || s.Dropped() != 2*sent-60 {
			t.Fatalf("%d answers after a second, want the rate of 20", answers)
		}
	})
}

func TestServerSourceTable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := natsim.NewNetwork()
		srv, s, stop := startSTUN(t, n, stunA1, stunA2, true, ServerConfig{MaxSources: 2, Rate: 10, Burst: 10})
		defer stop()
		var pcs []net.PacketConn
		for _, a := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"} {
			h, _ := n.NewHost(ip(a))
			pc := mustListen(t, h, ":4000")
			defer pc.Close()
			pcs = append(pcs, pc)
		}
		for i, pc := range pcs {
			if out, _ := ask(t, pc, srv, request(t)); (out != nil) != (i < 2) {
				t.Fatalf("source %d answered %v with a table of 2", i, out != nil)
			}
		}
		time.Sleep(2 * time.Second) // the first two buckets refill: forgettable
		if out, _ := ask(t, pcs[2], srv, request(t)); out == nil {
			t.Fatal("a new source is refused after the table's entries went idle")
		}
		if s.Dropped() != 1 {
			t.Fatalf("dropped %d, want 1", s.Dropped())
		}
	})
}

func TestServerBadConfig(t *testing.T) {
	n := natsim.NewNetwork()
	h, _ := n.NewHost(stunA1, stunA2)
	pc := mustListen(t, h, netip.AddrPortFrom(stunA1, stunP1).String())
	defer pc.Close()
	alt := mustListen(t, h, netip.AddrPortFrom(stunA2, stunP2).String())
	defer alt.Close()
	if err := NewServer(ServerConfig{AltPort: alt}).Serve(pc); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("AltPort on another IP: %v, want ErrBadConfig", err)
	}
}

func TestIsSTUN(t *testing.T) {
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw
	if !IsSTUN(req) {
		t.Fatal("a Binding request is not STUN")
	}
	bad := append([]byte(nil), req...)
	bad[0] |= 0x40
	probe, _ := PunchPacket{}.MarshalBinary()
	for _, b := range [][]byte{nil, req[:19], bad, probe, append([]byte{0, 1, 0, 0, 1, 2, 3, 4}, make([]byte, 12)...)} {
		if IsSTUN(b) {
			t.Errorf("%x taken for STUN", b)
		}
	}
	if IsPunch(req) {
		t.Error("a STUN request taken for a punch packet")
	}
}
