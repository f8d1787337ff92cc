//go:build !linux

package transport

import "net"

// tuneConn sets platform options on a link socket; none here.
func tuneConn(c *net.TCPConn) {}
