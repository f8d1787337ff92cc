package linkrpc

import (
	"context"
	"testing"

	"github.com/darkmatter/darkmatter/circuit/cell"
)

// FuzzHandleCell feeds arbitrary fragment bodies from one peer: nothing
// panics, and the peer never holds more than the bounds.
func FuzzHandleCell(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 0, 2, 'h', 'i'})
	f.Add([]byte{0, 0, 0, 1, flagMore, 0x0f, 0xe9})
	f.Add([]byte{0, 0, 0, 1, flagResponse | flagRefused, 0, 0})
	f.Fuzz(func(t *testing.T, body []byte) {
		m := New(Config{Cmd: cell.CmdDHT, Handler: handlerFunc(func(context.Context, Peer, []byte) []byte { return []byte("ok") }), MaxPending: 2})
		defer m.Close()
		p := &pipe{ch: make(chan *cell.Cell, 1024), done: make(chan struct{})}
		defer p.close()
		for off := 0; off < len(body) || off == 0; off += cell.BodyLen {
			c := cell.New(0, cell.CmdDHT)
			copy(c.Body(), body[min(off, len(body)):])
			m.HandleCell(p, c)
		}
		m.mu.Lock()
		if ps := m.peers[p]; ps != nil && ps.pending > 2 {
			t.Fatalf("pending %d", ps.pending)
		}
		m.mu.Unlock()
		if _, err := parseFragment(body); err == nil && len(body) < headerLen {
			t.Fatal("a short body parsed")
		}
	})
}
