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
	"github.com/darkmatter/darkmatter/internal/defaults"
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
	// WriteTimeout bounds how long a write to a target may make no
	// progress (default 30s): a target that stops reading has its
	// connection closed and its stream ended after that long, and frees
	// the data queued for it.
	WriteTimeout time.Duration
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
	defaults.Set(&c.ConnectTimeout, 30*time.Second)
	defaults.Set(&c.WriteTimeout, 30*time.Second)
	return nil
}

// exitHandler serves BEGIN streams (KindTCP): it resolves and dials the
// target under the exit policy, then pumps data both ways.
//
// The target connection lives no longer than its stream: it is closed when
// the stream is aborted (END with an error reason, such as a half-close
// stream's END CLOSED), when the circuit is destroyed and when the switch
// closes (ctx ends in all three), once the data sent before a clean END is
// written, and when a write to the target makes no progress for
// WriteTimeout. Closing it ends both of the stream's goroutines, whatever
// the target does.
type exitHandler struct{ cfg *ExitConfig }

// ServeStream implements StreamHandler.
func (x exitHandler) ServeStream(ctx context.Context, req *StreamRequest) {
	dctx, cancel := context.WithTimeout(ctx, x.cfg.ConnectTimeout)
	conn, reason := x.dial(dctx, req.Target)
	cancel()
	if conn == nil {
		req.Reject(reason)
		return
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	st, err := req.Accept()
	if err != nil {
		conn.Close()
		return
	}
	pump(st, conn, x.cfg.WriteTimeout)
}

// pump copies between a stream and a connection until both directions end.
// On a half-close stream each direction's end is passed on alone: the
// client's END DONE becomes a TCP FIN to the target and the target's FIN an
// END DONE to the client (spec/streams.md §4). Writes to conn time out
// after writeTimeout without progress.
func pump(st *Stream, conn net.Conn, writeTimeout time.Duration) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Until END from the client.
		_, err := io.Copy(progressWriter{conn, writeTimeout}, st)
		if cw, ok := conn.(interface{ CloseWrite() error }); ok && err == nil && st.halfClose {
			if cw.CloseWrite() == nil {
				return
			}
		}
		st.Close()
		conn.Close()
	}()
	// Read in multiples of a cell's data so full reads fill whole cells.
	// (io.Copy would hand the work to the conn's WriteTo and its 32 KiB
	// buffer, leaving a part-filled cell every 8 cells.)
	buf := make([]byte, pumpCells*st.e.maxData())
	var err error
	for { // until the target closes
		var n int
		n, err = conn.Read(buf)
		if n > 0 {
			if _, werr := st.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	if err == io.EOF && st.CloseWrite() == nil {
		wg.Wait() // the client's direction may still be open
	}
	st.Close()
	conn.Close()
	wg.Wait()
}

// progressWriter writes to a connection with a deadline of timeout that is
// renewed whenever a write makes progress: a slow target is served, one
// that stops reading times out.
type progressWriter struct {
	conn    net.Conn
	timeout time.Duration
}

func (w progressWriter) Write(p []byte) (int, error) {
	n := 0
	for {
		w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
		k, err := w.conn.Write(p[n:])
		n += k
		var ne net.Error
		if err == nil || k == 0 || !errors.As(err, &ne) || !ne.Timeout() {
			return n, err
		}
	}
}

// pumpCells is how many cells' worth of data the exit reads from a target at
// once (about 126 KiB).
const pumpCells = 32

// dial applies the exit policy to every address of the target and connects
// to the first allowed one that answers.
func (x exitHandler) dial(ctx context.Context, target string) (net.Conn, streamerr.Reason) {
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
