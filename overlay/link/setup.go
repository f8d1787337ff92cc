package link

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/safelog"
)

// Dial runs the initiator side of the link protocol over conn against a
// responder whose static link key is peer: preamble, Noise IK handshake,
// HELLO exchange. It returns once the peer's HELLO has arrived; from then
// on h receives the link's cells. h may be called before Dial returns
// (the link may even have closed by then): a caller that keeps links in a
// table should add l and then check l.Done(). On error conn is closed and
// h is never called. cfg may be nil; h may be nil to discard cells.
//
// A responder without hardware AES answers an AESGCM proposal with a
// "use ChaChaPoly" reject: Dial then fails with ErrSuiteRejected, and the
// caller must dial a new conn and call Dial once more with a copy of cfg
// whose Suite is SuiteChaChaPoly and SuiteRetry is true (Connect does
// this). With cfg.PeerPrefersAES such a reject fails with ErrDowngrade.
func Dial(ctx context.Context, conn net.Conn, cfg *Config, peer keys.LinkPublicKey, h Handler) (*Link, error) {
	s, err := cfg.settings()
	if err != nil {
		conn.Close()
		return nil, err
	}
	return establish(ctx, conn, s, h, func(rd *frameReader) (*session, error) {
		return dialHandshake(conn, rd, s, peer)
	}, true)
}

// Connect gets a conn from dial and runs Dial over it. If the responder
// asks for ChaChaPoly (ErrSuiteRejected), it dials a second conn and runs
// Dial again with Suite SuiteChaChaPoly and SuiteRetry set, once, as
// spec/links.md §3.1 requires. An error from dial is returned as it is.
func Connect(ctx context.Context, dial func(context.Context) (net.Conn, error), cfg *Config,
	peer keys.LinkPublicKey, h Handler) (*Link, error) {
	conn, err := dial(ctx)
	if err != nil {
		return nil, err
	}
	l, err := Dial(ctx, conn, cfg, peer, h)
	if !errors.Is(err, ErrSuiteRejected) {
		return l, err
	}
	var retry Config
	if cfg != nil {
		retry = *cfg
	}
	retry.Suite, retry.SuiteRetry = SuiteChaChaPoly, true
	if conn, err = dial(ctx); err != nil {
		return nil, err
	}
	return Dial(ctx, conn, &retry, peer, h)
}

// Accept runs the responder side of the link protocol over conn. cfg must
// have a Static key. It checks the preamble, answers the handshake (or
// sends a reject frame) and returns once the peer's HELLO has arrived. As
// with Dial, h may be called before Accept returns. On error conn is
// closed and h is never called.
func Accept(ctx context.Context, conn net.Conn, cfg *Config, h Handler) (*Link, error) {
	s, err := cfg.settings()
	if err == nil && s.static == nil {
		err = errors.New("link: Accept needs Config.Static")
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return establish(ctx, conn, s, h, func(rd *frameReader) (*session, error) {
		return acceptHandshake(conn, rd, s)
	}, false)
}

// establish runs handshake and the HELLO exchange under the handshake
// deadline and ctx, then starts the link.
func establish(ctx context.Context, conn net.Conn, s *settings, h Handler,
	handshake func(*frameReader) (*session, error), initiator bool) (*Link, error) {
	deadline := time.Now().Add(s.handshakeTimeout)
	ctxDeadline := false
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline, ctxDeadline = d, true
	}
	fail := func(err error) (*Link, error) {
		conn.Close()
		switch cerr := context.Cause(ctx); {
		case cerr != nil:
			err = fmt.Errorf("link: handshake: %w", cerr)
		case errors.Is(err, os.ErrDeadlineExceeded) && ctxDeadline:
			// The conn deadline was ctx's, and fired just before ctx.
			err = fmt.Errorf("link: handshake: %w", context.DeadlineExceeded)
		case errors.Is(err, os.ErrDeadlineExceeded):
			err = fmt.Errorf("link: handshake timed out: %w", err)
		}
		s.logf.Printf("link %v: handshake failed: %v", safelog.S(conn.RemoteAddr()), err)
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return fail(scrub(err))
	}
	// Cancelling ctx makes the blocked Read or Write fail at once.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })

	rd := newFrameReader(conn)
	sess, err := handshake(rd)
	var peer hello
	var version int
	if err == nil {
		peer, version, err = exchangeHello(conn, rd, sess, s, initiator)
	}
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return fail(err)
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return fail(scrub(err))
	}
	l := newLink(conn, s, h, initiator, rd, sess, peer, version)
	l.start()
	return l, nil
}

// dialHandshake sends the preamble and the first handshake message and
// reads the answer: the second message or a reject frame.
func dialHandshake(conn net.Conn, rd *frameReader, s *settings, peer keys.LinkPublicKey) (*session, error) {
	p := s.preamble()
	ini, msg1, err := startInitiator(s, p, peer)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, PreambleLen+FrameHeaderLen+Msg1Len)
	out = p.append(out)
	out = appendFrameHeader(out, len(msg1))
	out = append(out, msg1...)
	if _, err := conn.Write(out); err != nil {
		return nil, fmt.Errorf("%w: send first message: %w", ErrHandshake, scrub(err))
	}
	msg2, err := rd.next(Msg2Len)
	if err != nil {
		return nil, handshakeReadErr(err)
	}
	if len(msg2) == 0 {
		reason, err := rd.readByte()
		if err != nil {
			return nil, handshakeReadErr(err)
		}
		err = rejectErr(reason, s.suite, s.flags, s.peerPrefersAES)
		if errors.Is(err, ErrNetworkMismatch) {
			err = fmt.Errorf("%w (we are on %q)", err, s.network)
		}
		return nil, err
	}
	return ini.finish(msg2, peer)
}

// acceptHandshake checks the preamble and answers the first handshake
// message, sending a reject frame when it must refuse.
func acceptHandshake(conn net.Conn, rd *frameReader, s *settings) (*session, error) {
	// Magic and version first: the version fixes the rest's length.
	b, err := rd.readFull(4)
	if err != nil {
		return nil, handshakeReadErr(err)
	}
	if reason, err := checkMagic(b); err != nil {
		if reason != 0 {
			reject(conn, reason)
		}
		return nil, err // a wrong magic is not darkmatter: close without a word
	}
	var raw [PreambleLen]byte
	copy(raw[:], b)
	if b, err = rd.readFull(PreambleLen - 4); err != nil {
		return nil, handshakeReadErr(err)
	}
	copy(raw[4:], b)
	p, err := parsePreamble(raw[:])
	if err != nil {
		return nil, err
	}
	if reason, err := p.check(s.netID, s.hwAES); err != nil {
		reject(conn, reason)
		if errors.Is(err, ErrNetworkMismatch) {
			err = fmt.Errorf("%w (we are on %q)", err, s.network)
		}
		return nil, err
	}
	msg1, err := rd.next(Msg1Len)
	if err != nil {
		if errors.Is(err, ErrProtocol) {
			reject(conn, RejectHandshake)
		}
		return nil, handshakeReadErr(err)
	}
	sess, msg2, err := respond(s, p, msg1)
	if err != nil {
		reject(conn, RejectHandshake)
		return nil, err
	}
	// Our HELLO goes out in the same write as the second message.
	out := make([]byte, 0, FrameHeaderLen+Msg2Len+FrameHeaderLen+MinMessageLen)
	out = appendFrameHeader(out, len(msg2))
	out = append(out, msg2...)
	if out, err = appendHelloMessage(out, sess, s.hello); err != nil {
		return nil, err
	}
	if _, err := conn.Write(out); err != nil {
		return nil, fmt.Errorf("%w: send second message: %w", ErrHandshake, scrub(err))
	}
	return sess, nil
}

// reject sends a reject frame, best effort.
func reject(conn net.Conn, reason byte) {
	conn.Write([]byte{0, 0, reason})
}

func handshakeReadErr(err error) error {
	switch {
	case errors.Is(err, ErrProtocol):
		return err
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%w: peer closed the connection", ErrHandshake)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: peer closed the connection mid-message", ErrHandshake)
	}
	return fmt.Errorf("%w: %w", ErrHandshake, scrub(err))
}

// appendHelloMessage appends our HELLO cell, whose payload is the HELLO
// fields, as the first transport message.
func appendHelloMessage(out []byte, sess *session, payload []byte) ([]byte, error) {
	c := cell.New(0, cell.CmdHello)
	defer c.Free()
	if err := c.SetPayload(payload); err != nil {
		return nil, fmt.Errorf("link: HELLO payload: %w", err)
	}
	off := len(out)
	out = appendFrameHeader(out, MinMessageLen)
	out = append(out, c.Bytes()...)
	return sess.send.seal(out, off+FrameHeaderLen)
}

// exchangeHello sends our HELLO if we are the initiator (the responder
// sent it with the second handshake message), reads the peer's and
// returns it with the Link version both list. The first transport message
// must be exactly one cell, a HELLO on circuit 0.
func exchangeHello(conn net.Conn, rd *frameReader, sess *session, s *settings, initiator bool) (hello, int, error) {
	if initiator {
		out, err := appendHelloMessage(make([]byte, 0, FrameHeaderLen+MinMessageLen), sess, s.hello)
		if err != nil {
			return hello{}, 0, err
		}
		if _, err := conn.Write(out); err != nil {
			return hello{}, 0, fmt.Errorf("%w: send HELLO: %w", ErrHandshake, scrub(err))
		}
	}
	msg, err := rd.next(MaxMessageLen)
	if err != nil {
		return hello{}, 0, handshakeReadErr(err)
	}
	payload, err := openHello(sess, msg)
	if err != nil {
		return hello{}, 0, err
	}
	h, err := parseHello(payload)
	if err != nil {
		return hello{}, 0, err
	}
	v, err := linkVersion(s.protocols, h.protocols)
	if err != nil {
		return hello{}, 0, err
	}
	return h, v, nil
}

// openHello decrypts the first transport message in place and returns the
// HELLO payload, a slice of msg.
func openHello(sess *session, msg []byte) ([]byte, error) {
	if len(msg) != MinMessageLen {
		return nil, protoErr("first transport message is %d bytes, want one HELLO cell (%d)", len(msg), MinMessageLen)
	}
	pt, err := sess.recv.open(msg)
	if err != nil {
		return nil, protoErr("HELLO message failed authentication")
	}
	if cmd := cell.Command(pt[4]); cmd != cell.CmdHello {
		return nil, protoErr("first cell is %v, want HELLO", cmd)
	}
	if binary.BigEndian.Uint32(pt) != 0 {
		return nil, protoErr("HELLO on a circuit other than 0")
	}
	n := int(binary.BigEndian.Uint16(pt[cell.HeaderLen:]))
	if n > MaxHelloLen {
		return nil, protoErr("HELLO payload length %d, at most %d", n, MaxHelloLen)
	}
	body := pt[cell.HeaderLen+2:]
	return body[:n], nil
}
