package natlab

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestCommandRejectsForeignNamespace(t *testing.T) {
	l := &Lab{Public: "dmx"}
	for _, ns := range []string{"elsewhere", ""} {
		cmd := l.Command(ns, "true")
		err := cmd.Run()
		if err == nil || !strings.Contains(err.Error(), "not a namespace of this lab") {
			t.Errorf("Command(%q).Run() = %v, want a refusal", ns, err)
		}
		if cmd.Process != nil {
			t.Errorf("Command(%q) started a process", ns)
		}
	}
	if err := l.Run("", func() error { return nil }); err == nil {
		t.Error("Run in the empty namespace name succeeded")
	}
}

// inode returns the inode number of the file at path (following links).
func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// A command runs in the namespace it names, as the process whose id the
// Cmd holds (ip netns exec execs in place), and ends with a kill.
func TestCommand(t *testing.T) {
	l := New(t, Options{})
	for _, ns := range []string{l.HomeA, l.Public} {
		cmd := l.Command(ns, "sleep", "30")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pid := cmd.Process.Pid
		want := inode(t, filepath.Join(netnsDir, ns))
		// Until ip has exec'd sleep, the process is ip in the
		// original namespace; wait (bounded) for sleep.
		deadline := time.Now().Add(5 * time.Second)
		var comm string
		for time.Now().Before(deadline) {
			b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
			if err != nil {
				t.Fatal(err)
			}
			if comm = strings.TrimSpace(string(b)); comm == "sleep" {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if comm != "sleep" {
			t.Errorf("process %d is %q, want sleep itself", pid, comm)
		}
		if got := inode(t, "/proc/"+strconv.Itoa(pid)+"/ns/net"); got != want {
			t.Errorf("process in network namespace %d, want %s's %d", got, ns, want)
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		var ee interface{ ExitCode() int }
		if err := cmd.Wait(); !errors.As(err, &ee) {
			t.Errorf("Wait after kill: %v", err)
		}
	}
}

// A TCP connection from home A to a listener in the public namespace
// arrives from router A's public address, and router A counts it as one
// masqueraded connection (router B none).
func TestListenDial(t *testing.T) {
	l := New(t, Options{})
	ln, err := l.Listen(l.Public, netip.AddrPortFrom(STUN1, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type accepted struct {
		remote net.Addr
		msg    string
		err    error
	}
	got := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- accepted{err: err}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(c)
		got <- accepted{c.RemoteAddr(), string(b), err}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	c, err := l.DialContext(ctx, l.HomeA, "tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if la := c.LocalAddr().(*net.TCPAddr).AddrPort().Addr(); la != HomeAddrA {
		t.Errorf("connection from %v, want home A's %v", la, HomeAddrA)
	}
	if _, err := io.WriteString(c, "from home A"); err != nil {
		t.Fatal(err)
	}
	c.Close()
	a := <-got
	if a.err != nil {
		t.Fatal(a.err)
	}
	if a.msg != "from home A" {
		t.Errorf("received %q", a.msg)
	}
	if ra := a.remote.(*net.TCPAddr).AddrPort().Addr(); ra != PublicA {
		t.Errorf("the listener saw %v, want router A's %v", ra, PublicA)
	}
	for r, want := range map[string]uint64{l.RouterA: 1, l.RouterB: 0} {
		if n, err := l.Masqueraded(r); err != nil || n != want {
			t.Errorf("Masqueraded(%s) = %d, %v; want %d", r, n, err, want)
		}
	}
	if _, err := l.Masqueraded(l.HomeA); err == nil {
		t.Error("Masqueraded of a home namespace succeeded")
	}
	if _, err := l.DialContext(ctx, "elsewhere", "tcp4", ln.Addr().String()); err == nil {
		t.Error("DialContext from a namespace outside the lab succeeded")
	}
}
