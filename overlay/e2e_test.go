package overlay

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
	"github.com/darkmatter/darkmatter/overlay/link"
	"github.com/darkmatter/darkmatter/overlay/transport"
)

var kinds = []string{"mem", "tcp"}

// 64 MiB through a 3-hop circuit arrive byte-identical.
func TestBulk64MiB(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			h := newHarness(t, kind, 4)
			defer h.close()
			const size = 64 << 20
			st, err := h.client.DialStream(ctxT(t), h.target.addr, "")
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			fmt.Fprintf(st, "D %d\n", size)
			hash := sha256.New()
			n, err := io.CopyN(hash, st, size)
			if err != nil || n != size {
				t.Fatalf("got %d bytes: %v", n, err)
			}
			var got [32]byte
			copy(got[:], hash.Sum(nil))
			if got != patternSum(size) {
				t.Fatal("SHA-256 mismatch")
			}
			if hops := len(st.(*circuit.Stream).Circuit().Hops()); hops != 3 {
				t.Fatalf("%d hops", hops)
			}
		})
	}
}

// 50 concurrent streams share circuits and all arrive intact.
func TestFiftyConcurrentStreams(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			h := newHarness(t, kind, 4)
			defer h.close()
			errs := make(chan error, 50)
			for i := 0; i < 50; i++ {
				go func() {
					st, err := h.client.DialStream(ctxT(t), h.target.addr, "")
					if err != nil {
						errs <- err
						return
					}
					defer st.Close()
					msg := make([]byte, 256<<10)
					rand.Read(msg)
					io.WriteString(st, "E\n")
					go st.Write(msg)
					got := make([]byte, len(msg))
					if _, err := io.ReadFull(st, got); err != nil {
						errs <- err
						return
					}
					if !bytes.Equal(got, msg) {
						errs <- errors.New("echo differs")
						return
					}
					errs <- nil
				}()
			}
			for i := 0; i < 50; i++ {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			if c := h.client.ClientCircuits(); c != 1 {
				t.Fatalf("50 streams with one isolation key used %d circuits", c)
			}
		})
	}
}

// Streams with different isolation keys never share a circuit.
func TestIsolation(t *testing.T) {
	h := newHarness(t, "mem", 4)
	defer h.close()
	a, err := h.client.DialStream(ctxT(t), h.target.addr, "alice")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := h.client.DialStream(ctxT(t), h.target.addr, "bob")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a.(*circuit.Stream).Circuit() == b.(*circuit.Stream).Circuit() {
		t.Fatal("different isolation keys share a circuit")
	}
	a2, err := h.client.DialStream(ctxT(t), h.target.addr, "alice")
	if err != nil {
		t.Fatal(err)
	}
	defer a2.Close()
	if a.(*circuit.Stream).Circuit() != a2.(*circuit.Stream).Circuit() {
		t.Fatal("same isolation key did not reuse the circuit")
	}
}

// Killing a relay mid-stream gives the reader an error, not a hang, and the
// next stream works on a new circuit.
func TestKillRelayMidStream(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			h := newHarness(t, kind, 5)
			defer h.close()
			st, err := h.client.DialStream(ctxT(t), h.target.addr, "")
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			fmt.Fprintf(st, "D %d\n", 1<<40) // endless
			if _, err := io.CopyN(io.Discard, st, 1<<20); err != nil {
				t.Fatal(err)
			}
			middle := h.relayByIdentity(st, 1)
			old := st.(*circuit.Stream).Circuit()
			middle.Close()
			st.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err = io.Copy(io.Discard, st)
			if err == nil || isTimeout(err) {
				t.Fatalf("read after the middle relay died: %v (want a circuit error, not a hang)", err)
			}
			st2, err := h.client.DialStream(ctxT(t), h.target.addr, "")
			if err != nil {
				t.Fatalf("next stream: %v", err)
			}
			defer st2.Close()
			if st2.(*circuit.Stream).Circuit() == old {
				t.Fatal("reused the dead circuit")
			}
			io.WriteString(st2, "E\n")
			io.WriteString(st2, "ping")
			buf := make([]byte, 4)
			if _, err := io.ReadFull(st2, buf); err != nil || string(buf) != "ping" {
				t.Fatalf("new circuit echo: %q %v", buf, err)
			}
		})
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Garbage on one link closes only that link; the relay keeps serving.
func TestGarbageClosesOnlyThatLink(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			h := newHarness(t, kind, 4)
			defer h.close()
			for _, r := range h.relays {
				conn, err := h.transport().Dial(ctxT(t), r.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				junk := make([]byte, 4096)
				rand.Read(junk)
				conn.Write(junk)
				conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				io.Copy(io.Discard, conn) // the relay must hang up
				conn.Close()
			}
			st, err := h.client.DialStream(ctxT(t), h.target.addr, "")
			if err != nil {
				t.Fatalf("relays stopped serving after garbage: %v", err)
			}
			defer st.Close()
			io.WriteString(st, "E\nok")
			buf := make([]byte, 2)
			if _, err := io.ReadFull(st, buf); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Over memnet every connection is recorded: each relay connects only to its
// circuit neighbours, the exit alone to the target, and neither the exit nor
// the target ever sees the client's address.
func TestRelaysOnlyTalkToNeighbours(t *testing.T) {
	h := newHarness(t, "mem", 5)
	defer h.close()
	before := len(h.mem.Dials())
	st, err := h.client.DialStream(ctxT(t), "target.test:80", "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	io.WriteString(st, "E\nx")
	io.ReadFull(st, make([]byte, 1))

	cc := st.(*circuit.Stream).Circuit()
	ip := func(addr string) string {
		a, _ := transport.ParseAddr(addr)
		host, _, _ := net.SplitHostPort(a.HostPort)
		return host
	}
	hopIP := func(i int) string { return ip(cc.Hops()[i].Addr) }
	allowed := map[string]string{ // dialler → the only host it may dial
		h.cliHost: hopIP(0),
		hopIP(0):  hopIP(1),
		hopIP(1):  hopIP(2),
		hopIP(2):  "10.250.0.1",
	}
	for _, d := range h.mem.Dials()[before:] {
		from, to := ip(d.From), ip(d.To)
		if allowed[from] != to {
			t.Errorf("%s dialled %s: not its circuit neighbour", from, to)
		}
	}
	for _, r := range h.target.remotes() {
		if ip(r) != hopIP(2) {
			t.Errorf("target saw %s, want only the exit %s", r, hopIP(2))
		}
	}
	checkClientLinks(t, h.client, cc)
	for i := 1; i < 3; i++ {
		r := h.relayByIdentity(st, i)
		for _, l := range r.links.Links() {
			if ip(l.RemoteAddr().String()) == h.cliHost {
				t.Errorf("hop %d has a link to the client", i+1)
			}
		}
	}
}

// checkClientLinks checks that a client links only to its primary guards
// (its directory sources), and that none of them is a later hop of cc.
func checkClientLinks(t *testing.T, c *Node, cc *circuit.ClientCirc) {
	t.Helper()
	prim := map[keys.LinkPublicKey]bool{}
	for _, g := range c.mgr.PrimaryGuards() {
		prim[g.Link] = true
	}
	for _, l := range c.links.Links() {
		if !prim[l.Peer()] {
			t.Errorf("the client links to a relay that is not one of its %d primary guards", len(prim))
		}
	}
	if cc == nil {
		return
	}
	for i, hop := range cc.Hops()[1:] {
		if prim[hop.Link] {
			t.Errorf("hop %d is one of the client's primary guards", i+2)
		}
	}
}

// Nodes of different networks refuse each other with a clear error.
func TestNetworkMismatch(t *testing.T) {
	h := newHarness(t, "tcp", 3)
	defer h.close()
	c, err := New(Config{Network: "another", Bootstrap: []descriptor.Bootstrap{h.relays[0].Bootstrap()}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Start(ctxT(t))
	if err == nil || !errors.Is(err, link.ErrNetworkMismatch) {
		t.Fatalf("got %v, want a network mismatch", err)
	}
	if !strings.Contains(err.Error(), "network") {
		t.Fatalf("error does not say why: %v", err)
	}
}

// A reader that stops reading never makes any node buffer more than the
// stream window: the exit stops sending and the relays' queues stay small.
func TestSlowReaderBoundsBuffering(t *testing.T) {
	h := newHarness(t, "mem", 4)
	defer h.close()
	st, err := h.client.DialStream(ctxT(t), h.target.addr, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fmt.Fprintf(st, "D %d\n", 1<<40) // endless, and we do not read
	// Wait until the circuit's traffic stops: the stream window is used up.
	var last uint64
	waitFor(t, func() bool {
		var sent uint64
		for _, r := range h.relays {
			for _, l := range r.links.Links() {
				sent += l.Stats().CellsSent
			}
		}
		still := sent == last
		last = sent
		time.Sleep(50 * time.Millisecond)
		return still
	}, "traffic to stop")
	for i, r := range h.relays {
		for _, l := range r.links.Links() {
			if q := l.QueueLen(); q > circuit.StreamWindow {
				t.Errorf("relay %d queues %d cells for one stalled stream", i, q)
			}
		}
	}
	// The client holds at most the stream window, unread.
	if b := st.(*circuit.Stream).Buffered(); b == 0 || b > circuit.StreamWindow*cell.MaxData {
		t.Errorf("client buffers %d bytes for a stalled stream; window is %d cells", b, circuit.StreamWindow)
	}
	// Reading resumes the transfer.
	if _, err := io.CopyN(io.Discard, st, 8<<20); err != nil {
		t.Fatal(err)
	}
}

// Many short streams on many isolation keys while a relay dies: every
// stream either works or fails cleanly, nothing hangs or leaks (goleak runs
// after the package's tests).
func TestChurn(t *testing.T) {
	h := newHarness(t, "mem", 6)
	defer h.close()
	const workers, rounds = 12, 8
	errs := make(chan error, workers)
	killed := make(chan struct{})
	var ok, failed atomic.Int64
	for w := 0; w < workers; w++ {
		go func() {
			for r := 0; r < rounds; r++ {
				if r == rounds/2 && w == 0 {
					h.relays[5].Close() // not relay 0: the client's guard
					close(killed)
				}
				st, err := h.client.DialStream(ctxT(t), h.target.addr, fmt.Sprintf("user-%d-%d", w, r%3))
				if err != nil {
					failed.Add(1)
					continue
				}
				st.SetDeadline(time.Now().Add(20 * time.Second))
				msg := make([]byte, 32<<10)
				rand.Read(msg)
				io.WriteString(st, "E\n")
				st.Write(msg)
				got := make([]byte, len(msg))
				_, err = io.ReadFull(st, got)
				st.Close()
				switch {
				case isTimeout(err):
					errs <- fmt.Errorf("stream hung: %w", err)
					return
				case err != nil:
					failed.Add(1)
				case !bytes.Equal(got, msg):
					errs <- errors.New("echo differs")
					return
				default:
					ok.Add(1)
				}
			}
			errs <- nil
		}()
	}
	for w := 0; w < workers; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	<-killed
	t.Logf("%d streams ok, %d failed cleanly", ok.Load(), failed.Load())
	if ok.Load() < workers*rounds*3/4 {
		t.Fatalf("only %d of %d streams worked", ok.Load(), workers*rounds)
	}
	// Afterwards everything still works.
	st, err := h.client.DialStream(ctxT(t), h.target.addr, "after")
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
}

// Logs never name an address or a key unless unsafe logging is on: run
// traffic and failures with every node logging, then look for any.
func TestLogsRedactAddressesAndKeys(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	logf := func(format string, args ...any) {
		mu.Lock()
		lines = append(lines, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	h := newHarnessLog(t, "mem", 4, logf)
	defer h.close()
	st, err := h.client.DialStream(ctxT(t), h.target.addr, "")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(st, "E\nx")
	io.ReadFull(st, make([]byte, 1))
	st.Close()
	// Failures that log: a stream to nowhere, a dead relay, garbage.
	h.client.DialStream(ctxT(t), "10.250.0.1:9", "")
	h.relays[3].Close()
	conn, err := h.transport().Dial(ctxT(t), h.relays[1].Addr().String())
	if err == nil {
		conn.Write([]byte("garbage garbage garbage"))
		conn.Close()
	}
	for i := 0; i < 5; i++ {
		if st, err := h.client.DialStream(ctxT(t), h.target.addr, fmt.Sprint(i)); err == nil {
			st.Close()
		}
	}
	time.Sleep(100 * time.Millisecond)

	var secrets []string
	for _, ip := range append(h.hosts, h.cliHost, "10.250.0.1") {
		secrets = append(secrets, ip)
	}
	for _, r := range h.relays {
		d := r.Descriptor()
		secrets = append(secrets, d.NodeID().String(), fmt.Sprintf("%x", d.Link[:8]), fmt.Sprintf("%x", d.Identity[:8]), r.Bootstrap().String()[:20])
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lines) == 0 {
		t.Fatal("nothing was logged; the test would prove nothing")
	}
	for _, l := range lines {
		for _, s := range secrets {
			if strings.Contains(l, s) {
				t.Errorf("log line names %q: %s", s, l)
			}
		}
	}
	t.Logf("%d log lines checked", len(lines))
}
