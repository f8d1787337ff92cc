package proxyserve

import (
	"io"
	"net"
	"sync"
)

// CloseWriter is a connection that can send EOF while still reading, like
// *net.TCPConn.
type CloseWriter interface {
	CloseWrite() error
}

// Splice copies client→remote and remote→client until both directions are
// done, then closes both connections. clientR is what client bytes are read
// from (client itself, or a reader holding bytes already buffered).
//
// When one direction reaches EOF, the destination is half-closed if it
// supports CloseWrite and the other direction carries on; otherwise, or on
// any error, both connections are closed at once, which ends the other
// direction too.
func Splice(client net.Conn, clientR io.Reader, remote net.Conn) {
	closeBoth := func() {
		client.Close()
		remote.Close()
	}
	copyHalf := func(dst net.Conn, src io.Reader) {
		_, err := io.Copy(dst, src)
		if err == nil {
			if cw, ok := dst.(CloseWriter); ok && cw.CloseWrite() == nil {
				return
			}
		}
		closeBoth()
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		copyHalf(remote, clientR)
	}()
	copyHalf(client, remote)
	wg.Wait()
	closeBoth()
}
