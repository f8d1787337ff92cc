package proxyserve

import (
	"io"
	"net"
	"sync"
)

// CloseWriter is a connection that can send EOF while still reading, like
// *net.TCPConn (a FIN) and circuit streams (an END in one direction).
type CloseWriter interface {
	CloseWrite() error
}

// Splice copies client→remote and remote→client until both directions are
// done, then closes both connections. clientR is what client bytes are read
// from (client itself, or a reader holding bytes already buffered).
//
// Half-close: when the client's side reaches EOF (the client shut its write
// side), Splice calls CloseWrite on remote and keeps copying remote→client
// until the remote's EOF, which it passes on to the client the same way; a
// client that sends its request and shuts its write side gets the whole
// response. The same holds the other way round.
//
// A direction that ends in an error, or whose destination has no
// CloseWrite or returns an error from it (an exit that cannot half-close),
// closes both connections at once, which ends the other direction too.
func Splice(client net.Conn, clientR io.Reader, remote net.Conn) {
	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			client.Close()
			remote.Close()
		})
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if !copyHalf(remote, clientR) {
			closeBoth()
		}
	}()
	if !copyHalf(client, remote) {
		closeBoth()
	}
	wg.Wait()
	closeBoth()
}

// copyHalf copies src to dst until EOF, then half-closes dst. It reports
// whether both worked; if not, the caller closes both connections.
func copyHalf(dst net.Conn, src io.Reader) bool {
	if _, err := io.Copy(dst, src); err != nil {
		return false
	}
	cw, ok := dst.(CloseWriter)
	return ok && cw.CloseWrite() == nil
}
