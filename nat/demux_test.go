package nat

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"
)

// A Demux on one loopback socket lets a STUN server answer probes while
// punch packets reach the punch view, drops other datagrams, honours read
// deadlines, and stops without closing the socket.
func TestDemux(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	d := NewDemux(pc)
	served := make(chan error, 1)
	go func() { served <- NewServer(ServerConfig{}).Serve(d.STUN()) }()

	client, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server := netip.MustParseAddrPort(pc.LocalAddr().String())
	// Garbage first: dropped, it must not reach either view.
	if _, err := client.WriteTo([]byte("not stun, not punch"), pc.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := Probe(ctx, client, []netip.AddrPort{server}, ProbeOptions{Timeout: 2 * time.Second})
	if err != nil || r.Mapped[0] != netip.MustParseAddrPort(client.LocalAddr().String()) {
		t.Fatalf("probe through the demux: %v, %v", r, err)
	}

	p, err := PunchPacket{Nonce: [16]byte{1}}.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.WriteTo(p, pc.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	d.Punch().SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := d.Punch().ReadFrom(buf)
	if err != nil || !IsPunch(buf[:n]) || from.String() != client.LocalAddr().String() {
		t.Fatalf("punch view: %x from %v, %v", buf[:n], from, err)
	}
	// Nothing else is queued there: the garbage was dropped.
	d.Punch().SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, _, err := d.Punch().ReadFrom(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("punch view after its packet: %v, want a deadline", err)
	}
	// The punch view writes on the shared socket.
	if _, err := d.Punch().WriteTo(p, client.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, _, err := client.ReadFrom(buf); err != nil || !IsPunch(buf[:n]) {
		t.Fatalf("write through the punch view: %v", err)
	}

	d.Close()
	if err := <-served; err != nil && !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Serve after Close: %v", err)
	}
	if _, _, err := d.STUN().ReadFrom(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("a closed view reads: %v", err)
	}
	// The socket itself is still open.
	pc.SetReadDeadline(time.Time{})
	if _, err := pc.WriteTo([]byte("x"), client.LocalAddr()); err != nil {
		t.Fatalf("the socket was closed with the demux: %v", err)
	}
}

// Two sockets that each run a STUN server behind a Demux probe each other
// through the Responses view: requests reach the server, responses the
// prober, on the same sockets.
func TestDemuxResponses(t *testing.T) {
	var socks [2]net.PacketConn
	var ds [2]*Demux
	for i := range socks {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		socks[i], ds[i] = pc, NewDemux(pc)
		defer ds[i].Close()
		go NewServer(ServerConfig{}).Serve(ds[i].STUN())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := range socks {
		other := netip.MustParseAddrPort(socks[1-i].LocalAddr().String())
		r, err := Probe(ctx, ds[i].Responses(), []netip.AddrPort{other}, ProbeOptions{Timeout: time.Second})
		if err != nil || r.Mapped[0] != netip.MustParseAddrPort(socks[i].LocalAddr().String()) {
			t.Fatalf("probe %d from a shared socket: %v, %v", i, r, err)
		}
	}
}
