package httpproxy

import (
	"bufio"
	"context"
	"io"
	"math"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"sync/atomic"
	"time"
)

// hopHeaders are removed from forwarded requests and responses, together
// with every header named in Connection (RFC 9110 section 7.6.1).
// Content-Length and Transfer-Encoding are not in this list because
// net/http regenerates them from the message's framing.
var hopHeaders = []string{
	"Connection",
	"Proxy-Connection",
	"Keep-Alive",
	"Proxy-Authorization",
	"Proxy-Authenticate",
	"Te",
	"Trailer", // the trailer fields themselves are forwarded
	"Transfer-Encoding",
	"Upgrade",
}

// removeHopByHop removes the hop-by-hop headers from h. For a response,
// net/http's ReadResponse has already deleted a Connection header that holds
// "close", and with it any other header names it listed; those headers are
// then passed on (httputil.ReverseProxy has the same limit).
func removeHopByHop(h http.Header) {
	for _, v := range h.Values("Connection") {
		for f := range strings.SplitSeq(v, ",") {
			if f = textproto.TrimString(f); f != "" {
				h.Del(f)
			}
		}
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
}

// forward relays one absolute-URI request and its response. It reports
// whether the client connection may carry another request.
func (s *Server) forward(ctx context.Context, c net.Conn, bw *bufio.Writer, req *Request) bool {
	hr := req.HTTP
	clientClose := hr.Close || !hr.ProtoAtLeast(1, 1)
	remote := s.dial(ctx, c, bw, req)
	if remote == nil {
		return false
	}
	defer s.srv.Release(remote)

	// Rewrite hr into the origin-form request sent upstream: Request.Write
	// sends URL.RequestURI() and Host, and regenerates the framing.
	removeHopByHop(hr.Header)
	if _, ok := hr.Header["User-Agent"]; !ok {
		hr.Header["User-Agent"] = []string{""} // keep net/http from adding its own
	}
	hr.Close = true
	hr.RequestURI = ""
	rbw := bufio.NewWriter(remote)
	body := &flushingBody{w: rbw}
	if hr.Body != nil && hr.Body != http.NoBody {
		body.ReadCloser = hr.Body
		hr.Body = body
	} else {
		body.eof.Store(true)
	}

	werr := make(chan error, 1)
	go func() {
		err := hr.Write(bufWriter{rbw})
		if err == nil {
			err = rbw.Flush()
		}
		if err != nil {
			remote.Close() // ends the response read too
		}
		werr <- err
	}()

	keep := s.relayResponse(remote, hr, bw, clientClose, body.eof.Load)

	// The response is over (or failed). The origin was sent
	// "Connection: close", so the stream is done either way; closing it
	// also ends a request write that is stuck on it.
	remote.Close()
	if !body.eof.Load() {
		// The response came before the whole request body: stop reading
		// the body from the client, whose connection cannot be reused.
		_ = c.SetReadDeadline(time.Now())
		<-werr
		return false
	}
	<-werr
	return keep
}

// relayResponse reads the response to out from remote and writes it to the
// client, passing on interim 1xx responses first. It reports whether the
// client connection may carry another request. bodySent reports whether the
// request body has been read to its end; if not when the final response
// starts, the origin answered early and the client connection will be
// closed, so the response says so.
func (s *Server) relayResponse(remote net.Conn, out *http.Request, bw *bufio.Writer, clientClose bool, bodySent func() bool) bool {
	lr := &limitReader{r: remote}
	rbr := bufio.NewReader(lr)
	var resp *http.Response
	for i := 0; ; i++ {
		lr.setLimit(maxHeaderBytes)
		var err error
		resp, err = http.ReadResponse(rbr, out)
		if err != nil {
			s.Logf.Printf("httpproxy: no valid response from the origin")
			writeStatus(bw, http.StatusBadGateway, "no valid response from the origin")
			return false
		}
		if resp.StatusCode >= 200 {
			break
		}
		if resp.StatusCode == http.StatusSwitchingProtocols || i >= maxInterim {
			// Upgrade was removed from the request, so 101 is a protocol
			// violation here.
			resp.Body.Close()
			s.Logf.Printf("httpproxy: unexpected %d response from the origin", resp.StatusCode)
			writeStatus(bw, http.StatusBadGateway, "unexpected interim response from the origin")
			return false
		}
		removeHopByHop(resp.Header)
		resp.Proto, resp.ProtoMajor, resp.ProtoMinor = "HTTP/1.1", 1, 1
		resp.Close = false
		if err := resp.Write(bw); err != nil {
			return false
		}
		if err := bw.Flush(); err != nil {
			return false
		}
	}
	lr.setLimit(math.MaxInt64)

	removeHopByHop(resp.Header)
	resp.Proto, resp.ProtoMajor, resp.ProtoMinor = "HTTP/1.1", 1, 1
	bodyless := out.Method == http.MethodHead || resp.StatusCode == http.StatusNoContent ||
		resp.StatusCode == http.StatusNotModified
	closeDelimited := resp.ContentLength < 0 && !isChunked(resp.TransferEncoding)
	if closeDelimited && !bodyless && !clientClose {
		// The origin ends the body by closing; the client gets it chunked
		// and keeps its connection.
		resp.TransferEncoding = []string{"chunked"}
		closeDelimited = false
	}
	resp.Close = clientClose || closeDelimited || !bodySent()
	if resp.Body != nil && resp.Body != http.NoBody {
		resp.Body = &flushingBody{ReadCloser: resp.Body, w: bw}
	}
	err := resp.Write(bufWriter{bw}) // closes resp.Body
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		// Part of the response may have reached the client, so the
		// connection cannot carry a status line now: just end it.
		s.Logf.Printf("httpproxy: response relay ended early")
		return false
	}
	return !resp.Close
}

func isChunked(te []string) bool { return len(te) > 0 && te[0] == "chunked" }

// flushingBody wraps a body that is copied into w and flushes w before each
// read, so that a slow body streams instead of waiting in w's buffer, while
// headers and small chunks still leave in one write. It records whether the
// body was read to its end.
//
// w must be reached through a bufWriter: if it were the destination of
// io.Copy itself, bufio.Writer.ReadFrom would read into its own buffer and
// the flush would corrupt it.
type flushingBody struct {
	io.ReadCloser
	w   *bufio.Writer
	eof atomic.Bool
}

func (b *flushingBody) Read(p []byte) (int, error) {
	if b.w.Buffered() > 0 {
		if err := b.w.Flush(); err != nil {
			return 0, err
		}
	}
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.eof.Store(true)
	}
	return n, err
}

// bufWriter hides bufio.Writer's ReadFrom (see flushingBody) but keeps it an
// io.ByteWriter, so that Request.Write does not add a buffer of its own.
type bufWriter struct{ bw *bufio.Writer }

func (w bufWriter) Write(p []byte) (int, error)       { return w.bw.Write(p) }
func (w bufWriter) WriteByte(c byte) error            { return w.bw.WriteByte(c) }
func (w bufWriter) WriteString(s string) (int, error) { return w.bw.WriteString(s) }
