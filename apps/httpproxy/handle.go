package httpproxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/darkmatter/darkmatter/internal/proxyserve"
	"github.com/darkmatter/darkmatter/internal/safelog"
)

// Implementation limits.
const (
	// maxHeaderBytes bounds the request line and headers of one request,
	// and the status line and headers of one response, like net/http's
	// DefaultMaxHeaderBytes.
	maxHeaderBytes = 1 << 20
	// maxInterim bounds the 1xx responses passed on for one request.
	maxInterim = 16
	// lingerTime and lingerBytes bound how long and how much of an unread
	// request is drained after an error response, so that closing the
	// connection does not reset it before the client has read the
	// response.
	lingerTime  = 500 * time.Millisecond
	lingerBytes = 256 << 10
)

// handle serves one client connection: requests in sequence until the
// client or a response ends it, or a CONNECT turns it into a tunnel. The
// caller closes c.
func (s *Server) handle(ctx context.Context, c net.Conn) {
	lr := &limitReader{r: c}
	br := bufio.NewReader(lr)
	bw := bufio.NewWriter(c)
	for {
		lr.setLimit(maxHeaderBytes)
		if err := c.SetReadDeadline(time.Now().Add(s.srv.HandshakeTimeout())); err != nil {
			return
		}
		req, err := ParseRequest(br)
		if err != nil {
			s.rejectRequest(c, bw, lr, err)
			return
		}
		lr.setLimit(math.MaxInt64)
		if err := c.SetReadDeadline(time.Time{}); err != nil {
			return
		}
		if req.Connect {
			s.tunnel(ctx, c, br, bw, req)
			return
		}
		if !s.forward(ctx, c, bw, req) {
			return
		}
	}
}

// rejectRequest answers a request that ParseRequest refused, or just
// returns when the connection ended or timed out.
//
// Whether the connection failed is decided by the error of the connection
// itself (lr.err), not by err: bufio.Reader.ReadLine returns a partial
// line without the error that cut it, so a request line cut by the
// handshake deadline reaches the parser as a malformed request, and a
// malformed URL gives a *url.Error, which has the methods of a net.Error.
func (s *Server) rejectRequest(c net.Conn, bw *bufio.Writer, lr *limitReader, err error) {
	switch {
	case lr.hit:
		s.Logf.Printf("httpproxy: request headers too large")
		writeStatus(bw, http.StatusRequestHeaderFieldsTooLarge, "request headers too large")
	case lr.err != nil:
		switch {
		case errors.Is(lr.err, os.ErrDeadlineExceeded):
			// Idle, or a request header slower than HandshakeTimeout
			// (a slowloris); not worth a line each time.
		case errors.Is(err, io.EOF):
			// The client closed an idle connection.
		case errors.Is(lr.err, io.EOF), errors.Is(lr.err, net.ErrClosed):
			s.Logf.Printf("httpproxy: client closed the connection mid-request")
		default:
			s.Logf.Printf("httpproxy: read request: i/o error")
		}
		return
	case errors.Is(err, ErrHTTPVersion):
		s.Logf.Printf("%s", err)
		writeStatus(bw, http.StatusHTTPVersionNotSupported, err.Error())
	case errors.Is(err, ErrNotProxyRequest), errors.Is(err, ErrScheme),
		errors.Is(err, ErrBadTarget), errors.Is(err, ErrUserinfo), errors.Is(err, ErrProxyAuth):
		s.Logf.Printf("%s", err)
		writeStatus(bw, http.StatusBadRequest, err.Error())
	default:
		// net/http's message may quote the request line, which holds the
		// target: do not log it.
		s.Logf.Printf("httpproxy: malformed request")
		writeStatus(bw, http.StatusBadRequest, "malformed request")
	}
	lingerClose(c)
}

// dial opens the stream for req. On failure it answers the client and
// returns nil. The caller releases the stream with s.srv.Release.
func (s *Server) dial(ctx context.Context, c net.Conn, bw *bufio.Writer, req *Request) net.Conn {
	remote, err := s.srv.Dial(ctx, req.Target, req.Isolation)
	if err != nil {
		code := StatusCode(err)
		why := proxyserve.DialFailure(err)
		s.Logf.Printf("httpproxy: connect to %v failed: %d (%s): %v",
			safelog.S(req.Target), code, why, safelog.S(err))
		writeStatus(bw, code, failureText(err))
		lingerClose(c)
		return nil
	}
	return remote
}

// tunnel serves a CONNECT request.
func (s *Server) tunnel(ctx context.Context, c net.Conn, br *bufio.Reader, bw *bufio.Writer, req *Request) {
	remote := s.dial(ctx, c, bw, req)
	if remote == nil {
		return
	}
	defer s.srv.Release(remote)
	if _, err := bw.WriteString("HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	if err := bw.Flush(); err != nil {
		return
	}
	// Bytes the client sent right after its request (a TLS ClientHello,
	// say) are already in br: read through it until it is drained.
	var client io.Reader = c
	if br.Buffered() > 0 {
		client = br
	}
	// The tunnel, half-close included (a client's EOF reaches the target
	// as END when the stream supports it).
	proxyserve.Splice(c, client, remote)
}

// limitReader returns io.EOF once n bytes have been read, and records that
// it did. It also records the first error of the reader below (err), which
// stays once set: after it the connection is done for.
type limitReader struct {
	r   io.Reader
	n   int64
	hit bool
	err error
}

func (l *limitReader) setLimit(n int64) {
	l.n = n
	l.hit = false
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		l.hit = true
		return 0, io.EOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if err != nil && l.err == nil {
		l.err = err
	}
	return n, err
}

// lingerClose half-closes c and reads (and drops) what the client is still
// sending, for a bounded time, so that the close that follows does not
// reset the connection before the client has read the response.
func lingerClose(c net.Conn) {
	cw, ok := c.(proxyserve.CloseWriter)
	if !ok || cw.CloseWrite() != nil {
		return
	}
	if c.SetReadDeadline(time.Now().Add(lingerTime)) != nil {
		return
	}
	_, _ = io.CopyN(io.Discard, c, lingerBytes)
}
