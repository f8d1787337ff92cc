package socks

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/darkmatter/darkmatter/internal/proxyserve"
	"github.com/darkmatter/darkmatter/internal/safelog"
)

// handle serves one client connection from greeting to the end of the data
// phase. The caller closes c.
func (s *Server) handle(ctx context.Context, c net.Conn) {
	if err := c.SetDeadline(time.Now().Add(s.srv.HandshakeTimeout())); err != nil {
		return
	}
	// The client may send greeting, authentication and request in one
	// segment; a small buffer saves reads. Nothing after the request is
	// read before the reply, as the client must wait for it.
	br := bufio.NewReaderSize(c, 512)
	req, isolation, ok := s.handshake(c, br)
	if !ok {
		return
	}
	if err := c.SetDeadline(time.Time{}); err != nil {
		return
	}

	remote, err := s.srv.Dial(ctx, req.Target(), isolation)
	if err != nil {
		code := ReplyCode(err)
		s.Logf.Printf("socks: connect to %v failed: reply 0x%02x (%v): %v",
			safelog.S(req.Target()), code, proxyserve.DialFailure(err), safelog.S(err))
		_ = WriteReply(c, code)
		return
	}
	defer s.srv.Release(remote)
	if err := WriteReply(c, ReplySucceeded); err != nil {
		return
	}
	// Bytes the client sent after the request (it should not have) are
	// passed on, not dropped.
	var client io.Reader = c
	if br.Buffered() > 0 {
		client = br
	}
	// The data phase, half-close included (a client's EOF reaches the
	// target as END when the stream supports it).
	proxyserve.Splice(c, client, remote)
}

// handshake runs method negotiation, authentication and reads the request.
// It answers every failure itself and reports ok only for a CONNECT that
// should be dialed.
func (s *Server) handshake(c net.Conn, br *bufio.Reader) (req Request, isolation string, ok bool) {
	methods, err := ReadGreeting(br)
	if err != nil {
		s.logFailure("greeting", err)
		return Request{}, "", false
	}
	method := byte(MethodNoAcceptable)
	for _, m := range methods {
		if m == MethodUserPass {
			method = MethodUserPass
			break
		}
		if m == MethodNoAuth {
			method = MethodNoAuth
		}
	}
	if _, err := c.Write([]byte{Version, method}); err != nil || method == MethodNoAcceptable {
		if method == MethodNoAcceptable {
			s.Logf.Printf("socks: client offered no acceptable method")
		}
		return Request{}, "", false
	}
	if method == MethodUserPass {
		user, pass, err := ReadUserPass(br)
		if err != nil {
			s.logFailure("username/password", err)
			_, _ = c.Write([]byte{UserPassVersion, 0x01})
			return Request{}, "", false
		}
		if _, err := c.Write([]byte{UserPassVersion, 0x00}); err != nil {
			return Request{}, "", false
		}
		isolation = IsolationKey(user, pass)
	}

	req, err = ReadRequest(br)
	switch {
	case err == nil:
	case errors.Is(err, ErrAddressType):
		s.logFailure("request", err)
		_ = WriteReply(c, ReplyAddressNotSupported)
		return Request{}, "", false
	case errors.Is(err, ErrBadDomain):
		s.logFailure("request", err)
		_ = WriteReply(c, ReplyGeneralFailure)
		return Request{}, "", false
	default:
		s.logFailure("request", err)
		return Request{}, "", false
	}
	if req.Cmd != CmdConnect {
		s.Logf.Printf("socks: unsupported command 0x%02x", req.Cmd)
		_ = WriteReply(c, ReplyCommandNotSupported)
		return Request{}, "", false
	}
	if req.Port == 0 {
		s.Logf.Printf("socks: refusing CONNECT to port 0")
		_ = WriteReply(c, ReplyGeneralFailure)
		return Request{}, "", false
	}
	return req, isolation, true
}

// IsolationKey returns the stream-isolation key for a username/password
// pair: "socks5:" followed by each string prefixed with its decimal length
// and a colon.
func IsolationKey(user, pass string) string {
	return "socks5:" + strconv.Itoa(len(user)) + ":" + user + strconv.Itoa(len(pass)) + ":" + pass
}

// logFailure logs a handshake failure without the error text of I/O errors,
// which would hold the client's address.
func (s *Server) logFailure(stage string, err error) {
	if s.Logf == nil {
		return
	}
	var why string
	switch {
	case errors.Is(err, ErrVersion), errors.Is(err, ErrAddressType), errors.Is(err, ErrBadDomain):
		why = err.Error()
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		why = "client closed the connection"
	case errors.Is(err, os.ErrDeadlineExceeded):
		why = "handshake timed out"
	case errors.Is(err, net.ErrClosed):
		why = "server closed"
	default:
		why = "i/o error"
	}
	s.Logf.Printf("socks: %s failed: %s", stage, why)
}
