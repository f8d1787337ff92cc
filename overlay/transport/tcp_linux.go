package transport

import (
	"net"
	"syscall"
)

// notSentLowat caps the bytes a link socket holds unsent in the kernel
// (TCP_NOTSENT_LOWAT): data the kernel has taken cannot be reordered by
// the link's fair scheduler, so a bulk circuit's backlog stays in the
// link's per-circuit queues, where an interactive cell can pass it.
const notSentLowat = 128 << 10

// tcpNotSentLowat is TCP_NOTSENT_LOWAT from linux/tcp.h.
const tcpNotSentLowat = 25

// tuneConn sets Linux-only options on a link socket.
func tuneConn(c *net.TCPConn) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpNotSentLowat, notSentLowat)
	})
}
