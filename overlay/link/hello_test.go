package link

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/circuit/protover"
)

func TestParseHello(t *testing.T) {
	link1 := protover.Set{}.With(protover.Link, 1)
	for _, tc := range []struct {
		name    string
		payload []byte
		proto   protover.Set
		desc    []byte
		err     error
	}{
		{"protocols only", rogueHello(), link1, nil, nil},
		{"with descriptor", rogueHello([]byte{2, 0, 3, 'a', 'b', 'c'}), link1, []byte("abc"), nil},
		{"descriptor first", append([]byte{2, 0, 1, 'x'}, rogueHello()...), link1, []byte("x"), nil},
		{"unknown field ignored", rogueHello([]byte{9, 0, 2, 'h', 'i'}, []byte{2, 0, 1, 'd'}), link1, []byte("d"), nil},
		{"unknown empty field ignored", rogueHello([]byte{200, 0, 0}), link1, nil, nil},
		{"empty descriptor", rogueHello([]byte{2, 0, 0}), link1, []byte{}, nil},
		{"empty payload", nil, protover.Set{}, nil, ErrProtocol},
		{"no protocols", []byte{2, 0, 1, 'x'}, protover.Set{}, nil, ErrProtocol},
		{"protocols twice", rogueHello(rogueHello()), protover.Set{}, nil, ErrProtocol},
		{"unknown field twice", rogueHello([]byte{9, 0, 0, 9, 0, 0}), protover.Set{}, nil, ErrProtocol},
		{"truncated header", rogueHello([]byte{2, 0}), protover.Set{}, nil, ErrProtocol},
		{"field past the end", rogueHello([]byte{2, 0, 5, 'a'}), protover.Set{}, nil, ErrProtocol},
		{"protocols with trailing bytes", []byte{1, 0, 7, 1, 1, 0, 0, 0, 1, 0}, protover.Set{}, nil, ErrProtocol},
		{"protocols truncated", []byte{1, 0, 5, 1, 1, 0, 0, 0}, protover.Set{}, nil, ErrProtocol},
		{"protocols malformed", []byte{1, 0, 6, 1, 1, 0, 0, 0, 0}, protover.Set{}, nil, ErrProtocol},
	} {
		h, err := parseHello(tc.payload)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || !h.protocols.Equal(tc.proto) || !bytes.Equal(h.descriptor, tc.desc) || (tc.desc == nil) != (h.descriptor == nil) {
			t.Errorf("%s: %v %q, %v", tc.name, h.protocols, h.descriptor, err)
		}
	}
}

func TestLinkVersion(t *testing.T) {
	ours := withOwnProtocols(protover.Set{}, false)
	for _, tc := range []struct {
		peer string
		want int
	}{
		{"Link=1", 1},
		{"Link=1-5 Relay=2", 1},
		{"Link=2-3", 0},
		{"Relay=1", 0},
		{"", 0},
	} {
		peer, err := protover.ParseString(tc.peer)
		if err != nil {
			t.Fatal(err)
		}
		v, err := linkVersion(ours, peer)
		if v != tc.want || (tc.want == 0) != errors.Is(err, ErrVersion) {
			t.Errorf("peer %q: %d, %v", tc.peer, v, err)
		}
	}
}

// TestHelloFields runs HELLOs built by hand through a real Accept.
func TestHelloFields(t *testing.T) {
	srvKey := newKey(t)
	ln, dial := memnetListen(t)
	srv := startServer(ln, &Config{Static: srvKey, Protocols: protover.Set{}.With(protover.Relay, 2)})
	defer srv.close()
	for _, tc := range []struct {
		name  string
		hello []byte
		err   error // nil: the link comes up
		desc  string
	}{
		{"unknown field type ignored", rogueHello([]byte{77, 0, 4, 1, 2, 3, 4}, []byte{2, 0, 4, 'd', 'e', 's', 'c'}), nil, "desc"},
		{"newer Link versions too", []byte{1, 0, 11, 2, 1, 0, 0, 0, 7, 200, 0, 0, 0, 1, 250, 0, 1, 'x'}, nil, ""},
		{"missing protocols field", []byte{2, 0, 3, 'a', 'b', 'c'}, ErrProtocol, ""},
		{"empty HELLO", []byte{}, ErrProtocol, ""},
		{"no common Link version", []byte{1, 0, 6, 1, 1, 0, 0, 0, 2}, ErrVersion, ""},
		{"no Link entry", []byte{1, 0, 6, 1, 2, 0, 0, 0, 1}, ErrVersion, ""},
		{"protocols field twice", rogueHello(rogueHello()), ErrProtocol, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := dial(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			r := rogueDialWith(t, conn, srvKey.Public(), rogueOpts{network: DefaultNetwork, hello: tc.hello})
			// The responder's HELLO: its own protocols and ours.
			h, err := parseHello(r.peerHello)
			if err != nil {
				t.Fatal(err)
			}
			if !h.protocols.Supports(protover.Link, 1) || !h.protocols.Supports(protover.Relay, 2) || h.descriptor != nil {
				t.Errorf("responder HELLO %v %q", h.protocols, h.descriptor)
			}
			a := srv.next(t)
			if tc.err != nil {
				if !errors.Is(a.err, tc.err) {
					t.Errorf("Accept: %v, want %v", a.err, tc.err)
				}
				t.Logf("Accept: %v", a.err)
				return
			}
			if a.err != nil {
				t.Fatal(a.err)
			}
			defer a.l.Close()
			if string(a.l.PeerHello()) != tc.desc || a.l.Version() != 1 || !a.l.PeerProtocols().Supports(protover.Link, 1) {
				t.Errorf("PeerHello %q, Version %d, PeerProtocols %v", a.l.PeerHello(), a.l.Version(), a.l.PeerProtocols())
			}
		})
	}
}

// TestUnknownCommands: cells of commands the link does not know, from a
// peer that speaks a newer protocol (here: a real link sending them), are
// dropped and counted on any circuit; the link and its traffic go on.
func TestUnknownCommands(t *testing.T) {
	for _, nw := range networks {
		t.Run(nw.name, func(t *testing.T) {
			hcli, cch := recvChan()
			hsrv, sch := recvChan()
			p := newPair(t, nw.listen, nil, &Config{Static: newKey(t)}, hcli, hsrv)
			send := func(l *Link, circ uint32, cmd cell.Command) {
				if err := l.Send(cell.New(circ, cmd)); err != nil {
					t.Fatal(err)
				}
			}
			for round := range 50 {
				send(p.cli, 1, cell.CmdRelay)
				send(p.cli, 0, cell.Command(100))
				send(p.cli, 7, cell.Command(200))
				send(p.cli, 2, cell.CmdDestroy)
				send(p.cli, 0, cell.Command(255))
				send(p.srv, 3, cell.CmdRelay)
				send(p.srv, 0x80000001, cell.Command(42))
				for _, want := range []uint32{1, 2} {
					select {
					case c := <-sch:
						if c.Circ() != want {
							t.Fatalf("round %d: server got circuit %d (%v), want %d", round, c.Circ(), c.Cmd(), want)
						}
						c.Free()
					case <-p.srv.Done():
						t.Fatalf("server link closed: %v", p.srv.Err())
					}
				}
				select {
				case c := <-cch:
					if c.Circ() != 3 {
						t.Fatalf("client got circuit %d", c.Circ())
					}
					c.Free()
				case <-p.cli.Done():
					t.Fatalf("client link closed: %v", p.cli.Err())
				}
			}
			deadline := time.Now().Add(ioTimeout)
			for p.srv.Stats().UnknownCells != 150 || p.cli.Stats().UnknownCells != 50 {
				if time.Now().After(deadline) {
					t.Fatalf("unknown cells counted: server %d, client %d", p.srv.Stats().UnknownCells, p.cli.Stats().UnknownCells)
				}
				time.Sleep(time.Millisecond)
			}
			if p.cli.Err() != nil || p.srv.Err() != nil {
				t.Fatalf("closed: %v, %v", p.cli.Err(), p.srv.Err())
			}
		})
	}
}

// Send refuses the cells only the link sends.
func TestSendLinkCellsRefused(t *testing.T) {
	p := newPair(t, memnetListen, nil, &Config{Static: newKey(t)}, nil, nil)
	for _, cmd := range []cell.Command{cell.CmdHello, cell.CmdRekey} {
		if err := p.cli.Send(cell.New(0, cmd)); err == nil {
			t.Errorf("Send(%v) accepted", cmd)
		}
	}
	if p.cli.Stats().RekeysSent != 0 {
		t.Error("a refused REKEY was sent")
	}
}
