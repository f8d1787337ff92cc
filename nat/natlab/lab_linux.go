package natlab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Addresses of the lab.
var (
	// STUN1 and STUN2 are the public namespace's two addresses: the STUN
	// server's primary IP and its RFC 5780 alternate IP.
	STUN1 = netip.MustParseAddr("203.0.113.1")
	STUN2 = netip.MustParseAddr("203.0.113.2")
	// PublicA and PublicB are the routers' outside addresses.
	PublicA = netip.MustParseAddr("203.0.113.10")
	PublicB = netip.MustParseAddr("203.0.113.20")
	// HomeAddrA and HomeAddrB are the home namespaces' addresses, behind
	// router A (192.168.1.1) and router B (192.168.2.1).
	HomeAddrA = netip.MustParseAddr("192.168.1.2")
	HomeAddrB = netip.MustParseAddr("192.168.2.2")
)

// RequireEnv is the environment variable that, set to "require", turns the
// lab's skips into failures.
const RequireEnv = "DARKMATTER_NATLAB"

// cmdTimeout bounds every ip or iptables command.
const cmdTimeout = 10 * time.Second

// netnsDir is where `ip netns` keeps its named namespaces.
const netnsDir = "/var/run/netns"

// NAT is what a router does to the traffic it forwards out.
type NAT int

const (
	// Masquerade is plain iptables MASQUERADE: the kernel keeps the
	// source port when the resulting tuple is free, so a socket keeps its
	// public port for every destination (endpoint-independent mapping in
	// practice); conntrack admits only replies from the exact destination
	// (address-and-port-dependent filtering).
	Masquerade NAT = iota
	// RandomFully is MASQUERADE --random-fully: every new conntrack entry
	// gets a random port, so each destination sees another public port
	// (a symmetric NAT).
	RandomFully
)

// String names n as tests print it.
func (n NAT) String() string {
	switch n {
	case Masquerade:
		return "masquerade"
	case RandomFully:
		return "random-fully"
	}
	return fmt.Sprintf("natlab.NAT(%d)", int(n))
}

// Options chooses the NAT of each router.
type Options struct {
	A, B NAT
	// OpenInput leaves the routers without their input firewall: an
	// unsolicited packet to a router's wan address reaches the router
	// itself (which answers ICMP port unreachable), as on a Linux box that
	// masquerades with no firewall. See natRules for what that does to
	// hole punching.
	OpenInput bool
}

// Lab is a set of network namespaces wired as the package doc draws. The
// fields are the namespaces' names, for [Lab.ListenPacket] and [Lab.Run].
type Lab struct {
	Public, RouterA, RouterB, HomeA, HomeB string
}

// Namespaces lists the lab's namespaces.
func (l *Lab) Namespaces() []string {
	return []string{l.Public, l.RouterA, l.RouterB, l.HomeA, l.HomeB}
}

// skipReason says why the lab cannot run here, "" when it can: euid is the
// effective user id, lookPath finds a command.
func skipReason(euid int, lookPath func(string) (string, error)) string {
	if euid != 0 {
		return "natlab: needs root to create network namespaces"
	}
	for _, c := range []string{"ip", "iptables"} {
		if _, err := lookPath(c); err != nil {
			return fmt.Sprintf("natlab: needs the %s command: %v", c, err)
		}
	}
	return ""
}

// skip skips t, or fails it when RequireEnv says the lab must run.
func skip(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv(RequireEnv) == "require" {
		t.Fatalf("%s (and %s=require)", msg, RequireEnv)
	}
	t.Skip(msg)
}

// New builds a lab for t and removes it in t.Cleanup. It skips t when the
// machine cannot run it (see the package doc) and fails t when the setup
// goes wrong later.
func New(t testing.TB, opts Options) *Lab {
	t.Helper()
	if r := skipReason(os.Geteuid(), exec.LookPath); r != "" {
		skip(t, r)
	}
	prefix, err := freePrefix()
	if err != nil {
		t.Fatal(err)
	}
	l := &Lab{
		Public:  prefix + "pub",
		RouterA: prefix + "ra",
		RouterB: prefix + "rb",
		HomeA:   prefix + "ha",
		HomeB:   prefix + "hb",
	}
	var created []string
	t.Cleanup(func() {
		for _, ns := range slices.Backward(created) {
			if err := command("ip", "netns", "del", ns); err != nil {
				t.Errorf("natlab: removing namespace: %v", err)
			}
		}
	})
	for _, ns := range l.Namespaces() {
		if err := command("ip", "netns", "add", ns); err != nil {
			skip(t, fmt.Sprintf("natlab: cannot create a network namespace: %v", err))
		}
		created = append(created, ns)
		if err := command("ip", "-n", ns, "link", "set", "lo", "up"); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.wirePublic(); err != nil {
		t.Fatal(err)
	}
	routers := []struct {
		ns, home    string
		nat         NAT
		peer        string // the router's wan veth's name in the public namespace
		pub, gw, hm netip.Addr
	}{
		{l.RouterA, l.HomeA, opts.A, "wa", PublicA, netip.MustParseAddr("192.168.1.1"), HomeAddrA},
		{l.RouterB, l.HomeB, opts.B, "wb", PublicB, netip.MustParseAddr("192.168.2.1"), HomeAddrB},
	}
	for i, r := range routers {
		if err := l.wireRouter(r.ns, r.home, r.peer, r.pub, r.gw, r.hm); err != nil {
			t.Fatal(err)
		}
		if err := natRules(r.ns, r.nat, !opts.OpenInput); err != nil {
			if i == 0 {
				skip(t, fmt.Sprintf("natlab: iptables NAT unusable in a namespace: %v", err))
			}
			t.Fatal(err)
		}
	}
	return l
}

// freePrefix picks a namespace name prefix "dm" + 6 hex digits that no
// existing namespace uses. Names stay far below the 15 characters of an
// interface name.
func freePrefix() (string, error) {
	for range 10 {
		var b [3]byte
		_, _ = rand.Read(b[:])
		p := "dm" + hex.EncodeToString(b[:])
		m, err := filepath.Glob(filepath.Join(netnsDir, p+"*"))
		if err != nil {
			return "", fmt.Errorf("natlab: %w", err)
		}
		if len(m) == 0 {
			return p, nil
		}
	}
	return "", errors.New("natlab: no free namespace name")
}

// wirePublic makes the public namespace's bridge with the two STUN
// addresses.
func (l *Lab) wirePublic() error {
	p := l.Public
	return commands(
		[]string{"ip", "-n", p, "link", "add", "br0", "type", "bridge"},
		[]string{"ip", "-n", p, "addr", "add", STUN1.String() + "/24", "dev", "br0"},
		[]string{"ip", "-n", p, "addr", "add", STUN2.String() + "/24", "dev", "br0"},
		[]string{"ip", "-n", p, "link", "set", "br0", "up"},
	)
}

// wireRouter connects router ns to the public bridge (its veth wan, whose
// peer there is named peer) and to its home namespace (lan to eth0), and
// turns forwarding on.
func (l *Lab) wireRouter(ns, home, peer string, pub, gw, hm netip.Addr) error {
	return commands(
		[]string{"ip", "-n", ns, "link", "add", "wan", "type", "veth", "peer", "name", peer, "netns", l.Public},
		[]string{"ip", "-n", l.Public, "link", "set", peer, "master", "br0", "up"},
		[]string{"ip", "-n", ns, "addr", "add", pub.String() + "/24", "dev", "wan"},
		[]string{"ip", "-n", ns, "link", "set", "wan", "up"},
		[]string{"ip", "-n", ns, "link", "add", "lan", "type", "veth", "peer", "name", "eth0", "netns", home},
		[]string{"ip", "-n", ns, "addr", "add", gw.String() + "/24", "dev", "lan"},
		[]string{"ip", "-n", ns, "link", "set", "lan", "up"},
		[]string{"ip", "-n", ns, "route", "add", "default", "via", STUN1.String()},
		[]string{"ip", "-n", home, "addr", "add", hm.String() + "/24", "dev", "eth0"},
		[]string{"ip", "-n", home, "link", "set", "eth0", "up"},
		[]string{"ip", "-n", home, "route", "add", "default", "via", gw.String()},
		[]string{"ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
	)
}

// natRules installs router ns's NAT and, with firewall, its input firewall. The firewall
// matters for hole punching: without it, a peer's probe that arrives
// before the router's own outbound packet is delivered to the router
// itself, and the conntrack entry it leaves makes MASQUERADE pick another
// port for the outbound packet that follows, so the punch fails on a race
// of microseconds. Dropping it in INPUT leaves no entry (conntrack confirms
// entries only after the filter hooks), as on a home router.
func natRules(ns string, n NAT, firewall bool) error {
	ipt := []string{"ip", "netns", "exec", ns, "iptables", "-w", "5"}
	masq := append(slices.Clone(ipt), "-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j", "MASQUERADE")
	if n == RandomFully {
		masq = append(masq, "--random-fully")
	}
	if !firewall {
		return command(masq...)
	}
	return commands(
		masq,
		append(slices.Clone(ipt), "-A", "INPUT", "-i", "wan", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"),
		append(slices.Clone(ipt), "-A", "INPUT", "-i", "wan", "-j", "DROP"),
	)
}

func commands(cmds ...[]string) error {
	for _, c := range cmds {
		if err := command(c...); err != nil {
			return err
		}
	}
	return nil
}

// command runs a command, bounded by cmdTimeout, and returns an error with
// its output when it fails.
func command(args ...string) error {
	_, err := output(args...)
	return err
}

func output(args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("natlab: %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// ListNamespaces returns the names `ip netns list` shows.
func ListNamespaces() ([]string, error) {
	out, err := output("ip", "netns", "list")
	if err != nil {
		return nil, err
	}
	var names []string
	for line := range strings.Lines(string(out)) {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names, nil
}

// ListenPacket opens a UDP socket on addr (an IPv4 literal and port) in
// namespace ns of the lab. The socket stays in that namespace for its life.
func (l *Lab) ListenPacket(ns, addr string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := l.Run(ns, func() error {
		var err error
		pc, err = net.ListenPacket("udp4", addr)
		return err
	})
	return pc, err
}

// Run calls f on an OS thread moved into namespace ns of the lab, so that
// the sockets f creates belong to ns. f runs on a dedicated goroutine
// locked to its thread, and must do its namespace-sensitive system calls
// itself, not in goroutines it starts. When the thread cannot be moved
// back, it is left locked so that it ends with the goroutine.
func (l *Lab) Run(ns string, f func() error) error {
	if err := l.check(ns); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		restored, err := inNamespace(filepath.Join(netnsDir, ns), f)
		done <- err
		if restored {
			runtime.UnlockOSThread()
		}
	}()
	return <-done
}

// inNamespace runs f with the calling (locked) thread in the network
// namespace at path, then moves it back; restored is false when the thread
// could not be moved back.
func inNamespace(path string, f func() error) (restored bool, err error) {
	orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		return true, fmt.Errorf("natlab: %w", err)
	}
	defer orig.Close()
	target, err := os.Open(path)
	if err != nil {
		return true, fmt.Errorf("natlab: %w", err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return true, fmt.Errorf("natlab: entering %s: %w", path, err)
	}
	ferr := f()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		return false, fmt.Errorf("natlab: leaving %s: %w", path, err)
	}
	return true, ferr
}
