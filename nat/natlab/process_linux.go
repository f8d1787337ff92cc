package natlab

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
)

// Processes and stream sockets inside the lab's namespaces: what a test of
// whole programs (relays, a publishing service, a proxy) needs besides
// ListenPacket.

// Command returns the command that runs name with args inside namespace ns
// of the lab, by `ip netns exec ns name args...`. The ip command execs
// name in place, so the process's id is the program's own and a signal
// sent to it reaches the program. When ns is not a namespace of the lab,
// the command fails to start with an error saying so (as exec.Command's
// does when it cannot find the program).
func (l *Lab) Command(ns, name string, args ...string) *exec.Cmd {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
	if err := l.check(ns); err != nil {
		cmd.Err = err
	}
	return cmd
}

// Listen opens a TCP listener on addr (an IPv4 literal and port) in
// namespace ns of the lab. The socket stays in that namespace for its
// life: the test process can serve it, and programs in ns can reach it.
func (l *Lab) Listen(ns, addr string) (net.Listener, error) {
	var ln net.Listener
	err := l.Run(ns, func() error {
		var err error
		ln, err = net.Listen("tcp4", addr)
		return err
	})
	return ln, err
}

// DialContext connects to addr (an IP literal and port: no name is
// resolved) on network ("tcp4", "udp4", ...) from namespace ns of the lab,
// as a program in ns would. It has the signature of
// http.Transport.DialContext once ns is bound, e.g.
//
//	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
//		return lab.DialContext(ctx, lab.HomeB, network, addr)
//	}
func (l *Lab) DialContext(ctx context.Context, ns, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := l.Run(ns, func() error {
		var err error
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// check returns an error unless ns is one of the lab's namespaces (an
// empty name never is, even in a Lab whose fields are not all set).
func (l *Lab) check(ns string) error {
	if ns == "" || !slices.Contains(l.Namespaces(), ns) {
		return fmt.Errorf("natlab: %q is not a namespace of this lab", ns)
	}
	return nil
}

// Masqueraded returns how many connections (conntrack entries: a TCP
// connection, a UDP flow) router ns has masqueraded so far: the packet
// count of its MASQUERADE rule, which sees only the first packet of each.
// A test uses it to check that its traffic really crossed the NAT.
func (l *Lab) Masqueraded(router string) (uint64, error) {
	if router == "" || (router != l.RouterA && router != l.RouterB) {
		return 0, fmt.Errorf("natlab: %q is not a router of this lab", router)
	}
	out, err := output("ip", "netns", "exec", router, "iptables", "-w", "5", "-t", "nat", "-L", "POSTROUTING", "-v", "-n", "-x")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) > 2 && f[2] == "MASQUERADE" {
			n, err := strconv.ParseUint(f[0], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("natlab: iptables counter %q: %w", f[0], err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("natlab: no MASQUERADE rule in %s:\n%s", router, out)
}
