package overlay

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/crypto/keys"
)

// DHT streams (spec/streams.md §5.1): a client's DHT calls made by the last
// hop of its circuit.
const (
	dhtCallHeader   = 32 + 4
	dhtAnswerHeader = 1 + 4
	// maxDHTMessage bounds a request or response on a DHT stream.
	maxDHTMessage = 64 << 10
	// dhtProxyTimeout bounds one call the hop makes for a client.
	dhtProxyTimeout = 10 * time.Second
	// dhtStreamIdle closes a DHT stream that brings no call for this long.
	dhtStreamIdle = time.Minute
)

// Answer statuses.
const (
	dhtAnswered    byte = 0
	dhtNoAnswer    byte = 1
	dhtWillNotCall byte = 2
)

var (
	errDHTFrame = errors.New("overlay: malformed DHT stream frame")
	// errNoDHTAnswer: the DHT node refused or did not answer.
	errNoDHTAnswer = errors.New("overlay: the DHT node did not answer")
	// errWillNotCall: the proxy hop will not call that node.
	errWillNotCall = errors.New("overlay: the DHT proxy will not call that node")
)

// writeDHTCall writes one call frame.
func writeDHTCall(w io.Writer, to keys.NodeID, req []byte) error {
	if len(req) > maxDHTMessage {
		return errDHTFrame
	}
	b := make([]byte, dhtCallHeader+len(req))
	copy(b, to[:])
	binary.BigEndian.PutUint32(b[32:], uint32(len(req)))
	copy(b[dhtCallHeader:], req)
	_, err := w.Write(b)
	return err
}

// readDHTCall reads one call frame.
func readDHTCall(r io.Reader) (keys.NodeID, []byte, error) {
	var h [dhtCallHeader]byte
	var id keys.NodeID
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return id, nil, err
	}
	copy(id[:], h[:32])
	n := binary.BigEndian.Uint32(h[32:])
	if n > maxDHTMessage {
		return id, nil, fmt.Errorf("%w: length %d", errDHTFrame, n)
	}
	req := make([]byte, n)
	if _, err := io.ReadFull(r, req); err != nil {
		return id, nil, err
	}
	return id, req, nil
}

// writeDHTAnswer writes one answer frame.
func writeDHTAnswer(w io.Writer, status byte, resp []byte) error {
	if status != dhtAnswered {
		resp = nil
	}
	b := make([]byte, dhtAnswerHeader+len(resp))
	b[0] = status
	binary.BigEndian.PutUint32(b[1:], uint32(len(resp)))
	copy(b[dhtAnswerHeader:], resp)
	_, err := w.Write(b)
	return err
}

// readDHTAnswer reads one answer frame and turns a status into an error.
func readDHTAnswer(r io.Reader) ([]byte, error) {
	var h [dhtAnswerHeader]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(h[1:])
	if n > maxDHTMessage || (h[0] != dhtAnswered && n != 0) {
		return nil, fmt.Errorf("%w: length %d", errDHTFrame, n)
	}
	resp := make([]byte, n)
	if _, err := io.ReadFull(r, resp); err != nil {
		return nil, err
	}
	switch h[0] {
	case dhtAnswered:
		return resp, nil
	case dhtWillNotCall:
		return nil, errWillNotCall
	}
	return nil, errNoDHTAnswer
}

// dhtCaller makes one DHT call to a node: the Node over its links.
type dhtCaller interface {
	callDHT(ctx context.Context, to keys.NodeID, req []byte) ([]byte, error)
}

// dhtProxy serves BEGIN_DHT streams at a relay (circuit.KindDHT): it makes
// each call for the client and answers in order.
type dhtProxy struct{ c dhtCaller }

// ServeStream implements circuit.StreamHandler.
func (p dhtProxy) ServeStream(ctx context.Context, req *circuit.StreamRequest) {
	st, err := req.Accept()
	if err != nil {
		return
	}
	defer st.Close()
	for {
		st.SetReadDeadline(time.Now().Add(dhtStreamIdle))
		to, msg, err := readDHTCall(st)
		if err != nil {
			return // EOF, idle, or a malformed frame: the stream closes
		}
		cctx, cancel := context.WithTimeout(ctx, dhtProxyTimeout)
		resp, err := p.c.callDHT(cctx, to, msg)
		cancel()
		status := dhtAnswered
		switch {
		case errors.Is(err, errWillNotCall):
			status = dhtWillNotCall
		case err != nil:
			status = dhtNoAnswer
		}
		if writeDHTAnswer(st, status, resp) != nil {
			return
		}
	}
}

// circuitDHT makes DHT calls through the last hop of a circuit, over BEGIN_DHT
// streams: one per call in flight, idle ones kept for the next call.
type circuitDHT struct {
	cc *circuit.ClientCirc

	mu   sync.Mutex
	idle []idleStream
}

type idleStream struct {
	st    *circuit.Stream
	since time.Time
}

// maxIdleDHTStreams bounds the idle streams a circuitDHT keeps.
const maxIdleDHTStreams = 8

func (t *circuitDHT) callDHT(ctx context.Context, to keys.NodeID, req []byte) ([]byte, error) {
	st, err := t.stream(ctx)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { st.SetDeadline(time.Unix(1, 0)) })
	resp, err := func() ([]byte, error) {
		if err := writeDHTCall(st, to, req); err != nil {
			return nil, err
		}
		return readDHTAnswer(st)
	}()
	if !stop() || (err != nil && !errors.Is(err, errNoDHTAnswer) && !errors.Is(err, errWillNotCall)) {
		st.Close() // out of step, or broken
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, err
	}
	t.mu.Lock()
	if len(t.idle) < maxIdleDHTStreams {
		t.idle = append(t.idle, idleStream{st, time.Now()})
		st = nil
	}
	t.mu.Unlock()
	if st != nil {
		st.Close()
	}
	return resp, err
}

func (t *circuitDHT) stream(ctx context.Context) (*circuit.Stream, error) {
	t.mu.Lock()
	for n := len(t.idle); n > 0; n-- {
		is := t.idle[n-1]
		t.idle = t.idle[:n-1]
		if time.Since(is.since) < dhtStreamIdle/2 {
			t.mu.Unlock()
			return is.st, nil
		}
		is.st.Close() // the hop may close it any moment
	}
	t.mu.Unlock()
	return t.cc.OpenDHTStream(ctx)
}

// close closes the idle streams.
func (t *circuitDHT) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, is := range t.idle {
		is.st.Close()
	}
	t.idle = nil
}
