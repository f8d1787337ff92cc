package link

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/circuit/protover"
)

// hw returns a hardwareAES override for one side of a test.
func hw(v bool) func() bool { return func() bool { return v } }

// countDials wraps dial and counts its calls.
func countDials(dial func(context.Context) (net.Conn, error), n *atomic.Int32) func(context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		n.Add(1)
		return dial(ctx)
	}
}

// checkWorks sends one cell each way over a pair of links.
func checkWorks(t *testing.T, cli, srv *Link, hcli, hsrv chan *cell.Cell) {
	t.Helper()
	for _, d := range []struct {
		from *Link
		to   chan *cell.Cell
	}{{cli, hsrv}, {srv, hcli}} {
		if err := d.from.Send(cell.New(42, cell.CmdRelay)); err != nil {
			t.Fatal(err)
		}
		select {
		case c := <-d.to:
			if c.Circ() != 42 {
				t.Errorf("cell on circuit %d", c.Circ())
			}
			c.Free()
		case <-d.from.Done():
			t.Fatalf("link closed: %v", d.from.Err())
		}
	}
}

func chanHandler() (*testHandler, chan *cell.Cell) {
	ch := make(chan *cell.Cell, 16)
	return newHandler(func(l *Link, c *cell.Cell) { ch <- c }), ch
}

// TestSuiteNegotiation: AESGCM when both ends have hardware AES, else
// ChaChaPoly; an AES initiator and a responder without AES get there
// through a "use ChaChaPoly" reject and one real redial.
func TestSuiteNegotiation(t *testing.T) {
	for _, nw := range networks {
		t.Run(nw.name, func(t *testing.T) {
			for _, tc := range []struct {
				name           string
				cliAES, srvAES bool
				cliSuite       Suite
				want           Suite
				dials          int32
			}{
				{"both AES", true, true, 0, SuiteAESGCM, 1},
				{"initiator without AES", false, true, 0, SuiteChaChaPoly, 1},
				{"neither", false, false, 0, SuiteChaChaPoly, 1},
				{"responder without AES", true, false, 0, SuiteChaChaPoly, 2},
				{"AESGCM configured, responder without AES", false, false, SuiteAESGCM, SuiteChaChaPoly, 2},
				{"ChaChaPoly configured", true, true, SuiteChaChaPoly, SuiteChaChaPoly, 1},
			} {
				t.Run(tc.name, func(t *testing.T) {
					srvKey := newKey(t)
					ln, dial := nw.listen(t)
					hsrv, sch := chanHandler()
					srv := startServerWith(ln, &Config{Static: srvKey, hardwareAES: hw(tc.srvAES)}, hsrv.onCell)
					defer srv.close()
					var dials atomic.Int32
					hcli, cch := chanHandler()
					cli, err := Connect(context.Background(), countDials(dial, &dials),
						&Config{Suite: tc.cliSuite, hardwareAES: hw(tc.cliAES)}, srvKey.Public(), hcli)
					if err != nil {
						t.Fatal(err)
					}
					defer cli.Close()
					// The Accepts of the (two) attempts may finish in
					// either order.
					var a accepted
					for range dials.Load() {
						switch r := srv.next(t); {
						case r.err == nil:
							a = r
						case !errors.Is(r.err, ErrSuiteRejected):
							t.Errorf("Accept: %v", r.err)
						}
					}
					if a.l == nil {
						t.Fatal("no link accepted")
					}
					if dials.Load() != tc.dials {
						t.Errorf("%d dials, want %d", dials.Load(), tc.dials)
					}
					if cli.Suite() != tc.want || a.l.Suite() != tc.want {
						t.Errorf("suites %v / %v, want %v", cli.Suite(), a.l.Suite(), tc.want)
					}
					if cli.Version() != 1 || a.l.Version() != 1 {
						t.Errorf("Link versions %d / %d", cli.Version(), a.l.Version())
					}
					if got := a.l.PeerProtocols().Supports(protover.LinkAES, 1); got != tc.cliAES {
						t.Errorf("responder sees LinkAES %v", got)
					}
					if got := cli.PeerProtocols().Supports(protover.LinkAES, 1); got != tc.srvAES {
						t.Errorf("initiator sees LinkAES %v", got)
					}
					checkWorks(t, cli, a.l, cch, sch)
				})
			}
		})
	}
}

// Dial itself (without Connect) reports the reject as ErrSuiteRejected,
// and the documented retry works.
func TestSuiteRejectedDial(t *testing.T) {
	srvKey := newKey(t)
	ln, dial := memnetListen(t)
	srv := startServer(ln, &Config{Static: srvKey, hardwareAES: hw(false)})
	defer srv.close()
	cfg := &Config{Suite: SuiteAESGCM}
	conn, err := dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, err = Dial(context.Background(), conn, cfg, srvKey.Public(), nil)
	if !errors.Is(err, ErrSuiteRejected) || errors.Is(err, ErrHandshake) {
		t.Fatalf("Dial: %v, want ErrSuiteRejected only", err)
	}
	srv.next(t)
	retry := *cfg
	retry.Suite, retry.SuiteRetry = SuiteChaChaPoly, true
	conn, _ = dial(context.Background())
	l, err := Dial(context.Background(), conn, &retry, srvKey.Public(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Suite() != SuiteChaChaPoly {
		t.Errorf("suite %v", l.Suite())
	}
	if a := srv.next(t); a.err != nil {
		t.Fatal(a.err)
	}
	// SuiteRetry with AESGCM is a configuration error.
	conn, _ = dial(context.Background())
	if _, err := Dial(context.Background(), conn, &Config{Suite: SuiteAESGCM, SuiteRetry: true}, srvKey.Public(), nil); err == nil ||
		!strings.Contains(err.Error(), "SuiteRetry") {
		t.Errorf("SuiteRetry with AESGCM: %v", err)
	}
}

// The package default follows hasHardwareAES, and so does what the link
// advertises.
func TestHardwareAESDefault(t *testing.T) {
	saved := hasHardwareAES
	defer func() { hasHardwareAES = saved }()
	for _, aes := range []bool{false, true} {
		hasHardwareAES = hw(aes)
		if HardwareAES() != aes || Protocols(protover.Set{}).Supports(protover.LinkAES, 1) != aes {
			t.Errorf("hardware AES %v: HardwareAES %v, Protocols %v", aes, HardwareAES(), Protocols(protover.Set{}))
		}
		p := newPair(t, memnetListen, nil, &Config{Static: newKey(t)}, nil, nil)
		want := SuiteChaChaPoly
		if aes {
			want = SuiteAESGCM
		}
		if p.cli.Suite() != want || p.srv.Suite() != want {
			t.Errorf("hardware AES %v: suites %v, %v", aes, p.cli.Suite(), p.srv.Suite())
		}
	}
}

// mitmConn is the initiator's conn seen through a man in the middle who
// rewrites the first write (the preamble and message 1) with edit.
type mitmConn struct {
	net.Conn
	edit func(b []byte)
	once sync.Once
}

func (m *mitmConn) Write(b []byte) (int, error) {
	m.once.Do(func() {
		b = bytes.Clone(b)
		m.edit(b)
	})
	return m.Conn.Write(b)
}

// forgedReject is a conn on which a man in the middle swallows what the
// initiator sends and answers with a reject frame, reason 4 ("use
// ChaChaPoly"), as if from the responder. The real conn is closed.
type forgedReject struct {
	net.Conn
	r io.Reader
}

func newForgedReject(c net.Conn) *forgedReject {
	c.Close()
	return &forgedReject{Conn: c, r: bytes.NewReader([]byte{0, 0, RejectSuite})}
}

func (f *forgedReject) Write(b []byte) (int, error)      { return len(b), nil }
func (f *forgedReject) Read(b []byte) (int, error)       { return f.r.Read(b) }
func (f *forgedReject) SetDeadline(time.Time) error      { return nil }
func (f *forgedReject) SetReadDeadline(time.Time) error  { return nil }
func (f *forgedReject) SetWriteDeadline(time.Time) error { return nil }

// TestDowngradeRewrite: a man in the middle who changes the suite byte or
// the retry flag fails the handshake on both sides (the preamble is in the
// Noise prologue), with reject reason 2.
func TestDowngradeRewrite(t *testing.T) {
	const suiteAt, flagsAt = 12, 13
	for _, tc := range []struct {
		name           string
		cliAES, srvAES bool
		cli            Config
		edit           func(b []byte)
		srvErr         error
	}{
		{"AESGCM rewritten to ChaChaPoly", true, true, Config{},
			func(b []byte) { b[suiteAt] = byte(SuiteChaChaPoly) }, ErrHandshake},
		{"ChaChaPoly rewritten to AESGCM", false, true, Config{},
			func(b []byte) { b[suiteAt] = byte(SuiteAESGCM) }, ErrHandshake},
		{"retry flag set, responder without AES", false, false, Config{},
			func(b []byte) { b[flagsAt] |= FlagSuiteRetry }, ErrHandshake},
		{"retry flag set, responder with AES", false, true, Config{},
			func(b []byte) { b[flagsAt] |= FlagSuiteRetry }, ErrDowngrade},
		{"retry flag cleared", false, false, Config{SuiteRetry: true},
			func(b []byte) { b[flagsAt] &^= FlagSuiteRetry }, ErrHandshake},
		{"AESGCM with retry rewritten to plain ChaChaPoly", true, true, Config{Suite: SuiteChaChaPoly, SuiteRetry: true},
			func(b []byte) { b[flagsAt] = 0 }, ErrHandshake},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srvKey := newKey(t)
			ln, dial := memnetListen(t)
			srv := startServer(ln, &Config{Static: srvKey, hardwareAES: hw(tc.srvAES)})
			defer srv.close()
			cfg := tc.cli
			cfg.hardwareAES = hw(tc.cliAES)
			mitm := func(ctx context.Context) (net.Conn, error) {
				c, err := dial(ctx)
				if err != nil {
					return nil, err
				}
				return &mitmConn{Conn: c, edit: tc.edit}, nil
			}
			l, err := Connect(context.Background(), mitm, &cfg, srvKey.Public(), nil)
			if err == nil {
				l.Close()
				t.Fatal("initiator: handshake succeeded")
			}
			if !errors.Is(err, ErrHandshake) || !strings.Contains(err.Error(), "wrong key?") {
				t.Errorf("initiator: %v, want ErrHandshake after reject reason 2", err)
			}
			a := srv.next(t)
			if a.err == nil {
				a.l.Close()
				t.Fatal("responder: handshake succeeded")
			}
			if !errors.Is(a.err, tc.srvErr) || !errors.Is(a.err, ErrHandshake) {
				t.Errorf("responder: %v, want %v", a.err, tc.srvErr)
			}
			t.Logf("initiator: %v; responder: %v", err, a.err)
		})
	}
}

// TestDowngradeForgedReject: a man in the middle answers the AESGCM
// proposal with a forged "use ChaChaPoly". Against a responder with
// hardware AES the retry fails on both sides; an initiator that knows from
// the descriptor that the peer prefers AES fails at once with
// ErrDowngrade; against a responder without AES the forgery gains nothing
// (the same ChaChaPoly link).
func TestDowngradeForgedReject(t *testing.T) {
	for _, tc := range []struct {
		name           string
		srvAES         bool
		peerPrefersAES bool
		wantCli        error // nil: the link comes up with ChaChaPoly
		wantSrv        error // of the second Accept
		dials          int32
	}{
		{"responder with AES", true, false, ErrHandshake, ErrDowngrade, 2},
		{"descriptor says AES", true, true, ErrDowngrade, nil, 1},
		{"responder without AES", false, false, nil, nil, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srvKey := newKey(t)
			ln, dial := memnetListen(t)
			srv := startServer(ln, &Config{Static: srvKey, hardwareAES: hw(tc.srvAES)})
			defer srv.close()
			var dials atomic.Int32
			mitm := func(ctx context.Context) (net.Conn, error) {
				c, err := dial(ctx)
				if err != nil {
					return nil, err
				}
				if dials.Add(1) == 1 {
					f := newForgedReject(c)
					// The responder's side of this cut-off conn.
					if a := srv.next(t); a.err == nil {
						a.l.Close()
						t.Error("responder accepted the cut-off conn")
					}
					return f, nil
				}
				return c, nil
			}
			cfg := &Config{hardwareAES: hw(true), PeerPrefersAES: tc.peerPrefersAES}
			l, err := Connect(context.Background(), mitm, cfg, srvKey.Public(), nil)
			if dials.Load() != tc.dials {
				t.Errorf("%d dials, want %d", dials.Load(), tc.dials)
			}
			if tc.wantCli == nil {
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				if l.Suite() != SuiteChaChaPoly {
					t.Errorf("suite %v", l.Suite())
				}
				if a := srv.next(t); a.err != nil {
					t.Fatal(a.err)
				} else {
					defer a.l.Close()
				}
				return
			}
			if err == nil {
				l.Close()
				t.Fatal("initiator: handshake succeeded")
			}
			if !errors.Is(err, tc.wantCli) || !errors.Is(err, ErrHandshake) || errors.Is(err, ErrSuiteRejected) {
				t.Errorf("initiator: %v, want %v", err, tc.wantCli)
			}
			if tc.wantSrv != nil {
				a := srv.next(t)
				if a.err == nil {
					a.l.Close()
					t.Fatal("responder: handshake succeeded")
				}
				if !errors.Is(a.err, tc.wantSrv) {
					t.Errorf("responder: %v, want %v", a.err, tc.wantSrv)
				}
				t.Logf("responder: %v", a.err)
			}
			t.Logf("initiator: %v", err)
		})
	}
}

// rejectErr maps each reason for each proposal.
func TestRejectErr(t *testing.T) {
	for _, tc := range []struct {
		reason   byte
		suite    Suite
		prefers  bool
		want     error
		notWants error
	}{
		{RejectNetwork, SuiteAESGCM, false, ErrNetworkMismatch, ErrHandshake},
		{RejectHandshake, SuiteAESGCM, false, ErrHandshake, ErrDowngrade},
		{RejectVersion, SuiteChaChaPoly, false, ErrVersion, ErrHandshake},
		{RejectSuite, SuiteAESGCM, false, ErrSuiteRejected, ErrHandshake},
		{RejectSuite, SuiteAESGCM, true, ErrDowngrade, ErrSuiteRejected},
		{RejectSuite, SuiteChaChaPoly, false, ErrHandshake, ErrSuiteRejected},
		{RejectSuite, SuiteChaChaPoly, true, ErrHandshake, ErrSuiteRejected},
		{99, SuiteAESGCM, false, ErrHandshake, ErrSuiteRejected},
	} {
		err := rejectErr(tc.reason, tc.suite, 0, tc.prefers)
		if !errors.Is(err, tc.want) || errors.Is(err, tc.notWants) {
			t.Errorf("reason %d, %v, prefers AES %v: %v", tc.reason, tc.suite, tc.prefers, err)
		}
	}
}
