package circuit

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/circuit/exitpolicy"
	"github.com/darkmatter/darkmatter/crypto/layer"
	"github.com/darkmatter/darkmatter/internal/streamerr"
)

// ExitConfig makes a relay an exit.
type ExitConfig struct {
	// Policy decides which targets the exit connects to; nil means
	// exitpolicy.Default (no private, loopback or link-local targets).
	Policy *exitpolicy.Policy
	// Dial opens a TCP connection; nil means a net.Dialer. Tests inject an
	// in-memory dialer here.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Resolve resolves a host name at the exit; nil means
	// net.DefaultResolver.LookupNetIP. Clients never resolve names.
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
	// ConnectTimeout bounds resolving and connecting (default 30s).
	ConnectTimeout time.Duration
	// MaxStreams bounds open streams per circuit (default 512).
	MaxStreams int
}

func (c *ExitConfig) setDefaults() error {
	if c.Policy == nil {
		c.Policy = exitpolicy.Default()
	}
	if c.Dial == nil {
		d := &net.Dialer{}
		c.Dial = d.DialContext
	}
	if c.Resolve == nil {
		c.Resolve = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 30 * time.Second
	}
	if c.MaxStreams <= 0 {
		c.MaxStreams = 512
	}
	return nil
}

// exitEdge is the exit end of a circuit: it opens TCP connections for BEGIN
// and pumps stream data.
type exitEdge struct {
	*edge
	rc  *relayCirc
	cfg *ExitConfig
	wg  sync.WaitGroup
}

func newExitEdge(rc *relayCirc) *exitEdge {
	x := &exitEdge{edge: newEdge(), rc: rc, cfg: rc.sw.cfg.Exit}
	x.send = rc.originate
	return x
}

// handle processes a stream message from the client. It owns c.
func (x *exitEdge) handle(c *cell.Cell, m cell.RelayMsg, tag [layer.TagSize]byte) error {
	if m.Cmd != cell.RelayBegin {
		return x.handleMessage(c, m, tag)
	}
	b, err := cell.ParseBegin(m.Data)
	c.Free()
	if m.Stream == 0 || err != nil {
		if m.Stream != 0 {
			x.send(cell.RelayEnd, m.Stream, []byte{byte(streamerr.BadAddress)})
			return nil
		}
		return errProtocol
	}
	if x.numStreams() >= x.cfg.MaxStreams {
		x.send(cell.RelayEnd, m.Stream, []byte{byte(streamerr.ResourceLimit)})
		return nil
	}
	st := newStream(x.edge, m.Stream, b.Target)
	if !x.addStream(st) {
		return errProtocol
	}
	sw := x.rc.sw
	if !sw.goFunc(func() { x.connect(st, b.Target) }) {
		st.closeWith(streamerr.ResourceLimit)
	}
	return nil
}

// connect resolves and dials the target, then pumps data both ways.
func (x *exitEdge) connect(st *Stream, target string) {
	ctx, cancel := context.WithTimeout(x.rc.sw.ctx, x.cfg.ConnectTimeout)
	go func() { // stop connecting if the stream or circuit goes away
		select {
		case <-st.doneCh:
		case <-x.done:
		case <-ctx.Done():
		}
		cancel()
	}()
	conn, reason := x.dial(ctx, target)
	cancel()
	if conn == nil {
		st.closeWith(reason)
		return
	}
	if err := x.send(cell.RelayConnected, st.id, nil); err != nil {
		conn.Close()
		st.closeWith(streamerr.Destroyed)
		return
	}
	pump(st, conn)
}

// pump copies between a stream and a connection until both directions end.
func pump(st *Stream, conn net.Conn) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		io.Copy(conn, st) // until END from the client
		conn.Close()
	}()
	// Read in multiples of a cell's data so full reads fill whole cells.
	// (io.Copy would hand the work to the conn's WriteTo and its 32 KiB
	// buffer, leaving a part-filled cell every 8 cells.)
	buf := make([]byte, pumpCells*cell.MaxData)
	for { // until the target closes
		n, err := conn.Read(buf)
		if n > 0 {
			if _, werr := st.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	st.Close()
	conn.Close()
	wg.Wait()
}

// pumpCells is how many cells' worth of data the exit reads from a target at
// once (about 126 KiB).
const pumpCells = 32

// dial applies the exit policy to every address of the target and connects
// to the first allowed one that answers.
func (x *exitEdge) dial(ctx context.Context, target string) (net.Conn, streamerr.Reason) {
	t, err := cell.SplitTarget(target)
	if err != nil {
		return nil, streamerr.BadAddress
	}
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(t.Host); err == nil {
		addrs = []netip.Addr{ip}
	} else {
		addrs, err = x.cfg.Resolve(ctx, t.Host)
		if err != nil || len(addrs) == 0 {
			return nil, streamerr.ResolveFailed
		}
	}
	reason := streamerr.ExitPolicy
	for _, ip := range addrs {
		ip = ip.Unmap()
		if !x.cfg.Policy.Allows(ip, t.Port) {
			continue
		}
		conn, err := x.cfg.Dial(ctx, "tcp", netip.AddrPortFrom(ip, t.Port).String())
		if err == nil {
			return conn, streamerr.Done
		}
		reason = dialReason(ctx, err)
	}
	return nil, reason
}

func dialReason(ctx context.Context, err error) streamerr.Reason {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return streamerr.ConnRefused
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), ctx.Err() != nil:
		return streamerr.Timeout
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return streamerr.Unreachable
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return streamerr.Timeout
	}
	return streamerr.Misc
}

// closeAll ends every stream when the circuit dies.
func (x *exitEdge) closeAll() {
	x.close(ErrDestroyed)
}
