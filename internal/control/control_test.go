package control

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func okHandler(req Request) (*Status, error) {
	st := &Status{Role: "test", Relays: 7}
	if req.Paths {
		st.Circuits = []Circuit{{Hops: 3, Path: []string{RedactID("abcdef", req.Unsafe)}}}
	}
	return st, nil
}

func listen(t *testing.T, dir string) *Server {
	t.Helper()
	s, err := Listen(dir, okHandler)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// The socket is created with mode 0600, answers a query, and is removed
// on Close.
func TestListenQuery(t *testing.T) {
	dir := t.TempDir()
	s := listen(t, dir)
	fi, err := os.Lstat(filepath.Join(dir, SocketName))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want a socket with 0600", fi.Mode())
	}
	st, err := Query(context.Background(), dir, Request{Cmd: CmdStatus, Paths: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.Role != "test" || st.Relays != 7 || len(st.Circuits) != 1 || st.Circuits[0].Path[0] != "abcd…" {
		t.Fatalf("status %+v", st)
	}
	s.Close()
	if _, err := os.Lstat(filepath.Join(dir, SocketName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket left after Close: %v", err)
	}
	if _, err := Query(context.Background(), dir, Request{Cmd: CmdStatus}); err == nil {
		t.Fatal("query succeeded with no server")
	}
}

// A second node on the same directory is refused while the first lives.
func TestListenLiveRefused(t *testing.T) {
	dir := t.TempDir()
	listen(t, dir)
	if s, err := Listen(dir, okHandler); !errors.Is(err, ErrInUse) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("second Listen: %v, want ErrInUse", err)
	}
	// The first still answers.
	if _, err := Query(context.Background(), dir, Request{Cmd: CmdStatus}); err != nil {
		t.Fatal(err)
	}
}

// A socket left by a dead node is replaced.
func TestListenStaleReplaced(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, SocketName)
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("stale socket not left: %v", err)
	}
	listen(t, dir)
	if _, err := Query(context.Background(), dir, Request{Cmd: CmdStatus}); err != nil {
		t.Fatal(err)
	}
}

// A file that is not a socket is never removed, and the directory must be
// the owner's alone.
func TestListenRefusesUnsafe(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, SocketName)
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := Listen(dir, okHandler); err == nil {
		s.Close()
		t.Fatal("Listen replaced a regular file")
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "x" {
		t.Fatalf("regular file touched: %q %v", b, err)
	}

	open := t.TempDir()
	if err := os.Chmod(open, 0o770); err != nil {
		t.Fatal(err)
	}
	if s, err := Listen(open, okHandler); err == nil || !strings.Contains(err.Error(), "writable by group") {
		if s != nil {
			s.Close()
		}
		t.Fatalf("group-writable directory: %v", err)
	}

	fresh := filepath.Join(t.TempDir(), "new", "data")
	listen(t, fresh)
	if fi, err := os.Stat(fresh); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("created directory: %v %v", fi.Mode(), err)
	}
}

func TestRedactID(t *testing.T) {
	id := strings.Repeat("ab", 32)
	if got := RedactID(id, false); got != "abab…" {
		t.Errorf("redacted %q", got)
	}
	if got := RedactID(id, true); got != id {
		t.Errorf("unsafe %q", got)
	}
}

func TestDecodeRequest(t *testing.T) {
	good := map[string]Request{
		`{"cmd":"status"}`: {Cmd: "status"},
		`{"cmd":"status","paths":true,"unsafe":true}`: {Cmd: "status", Paths: true, Unsafe: true},
		" {\"cmd\":\"status\"} \n":                    {Cmd: "status"},
	}
	for in, want := range good {
		got, err := DecodeRequest([]byte(in))
		if err != nil || got != want {
			t.Errorf("%q: %+v %v", in, got, err)
		}
	}
	for _, in := range []string{
		``, `{}`, `{"cmd":"stop"}`, `{"cmd":"status","x":1}`, `{"cmd":"status"}{}`,
		`{"cmd":"status"} x`, `[1]`, `{"cmd":1}`,
		`{"cmd":"status","pad":"` + strings.Repeat("a", MaxRequest) + `"}`,
	} {
		if r, err := DecodeRequest([]byte(in)); err == nil {
			t.Errorf("%.40q accepted: %+v", in, r)
		}
	}
}

// ServeConn answers a bad request with an error, and an oversized one
// without reading past MaxRequest.
func TestServeConnErrors(t *testing.T) {
	for in, want := range map[string]string{
		"{\"cmd\":\"nope\"}\n":             "unknown cmd",
		strings.Repeat("a", MaxRequest+10): "over 4096 bytes",
	} {
		c, s := net.Pipe()
		srv := &Server{Handler: okHandler}
		done := make(chan struct{})
		go func() { srv.ServeConn(s); close(done) }()
		go func() { c.Write([]byte(in)) }()
		b, _ := io.ReadAll(c)
		c.Close()
		<-done
		if !strings.Contains(string(b), want) {
			t.Errorf("answer %q, want %q", b, want)
		}
	}
}

// A client that sends nothing is cut off at ReadTimeout, not before.
func TestServeConnReadTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, s := net.Pipe()
		defer c.Close()
		srv := &Server{Handler: okHandler, ReadTimeout: 3 * time.Second}
		done := make(chan struct{})
		go func() { srv.ServeConn(s); close(done) }()
		time.Sleep(3*time.Second - time.Millisecond)
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("connection closed before the read timeout")
		default:
		}
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		select {
		case <-done:
		default:
			t.Fatal("connection still open after the read timeout")
		}
	})
}

// Connections beyond MaxConns are closed at once.
func TestMaxConns(t *testing.T) {
	dir := t.TempDir()
	listen(t, dir)
	path := filepath.Join(dir, SocketName)
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range MaxConns {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// Let the server take every slot.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		_, err = c.Read(make([]byte, 1))
		c.Close()
		if errors.Is(err, io.EOF) {
			break // closed by the server: over the limit
		}
		if time.Now().After(deadline) {
			t.Fatalf("extra connection not refused: %v", err)
		}
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"cmd":"status"}`))
	f.Add([]byte(`{"cmd":"status","paths":true,"unsafe":false}`))
	f.Add([]byte(`{"cmd":"status"}{"cmd":"status"}`))
	f.Add([]byte(`{"cmd":"\u0000"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRequest(b)
		if err != nil {
			if r != (Request{}) {
				t.Fatalf("error with a request: %+v", r)
			}
			return
		}
		if len(b) > MaxRequest || r.Cmd != CmdStatus {
			t.Fatalf("accepted %d bytes, cmd %q", len(b), r.Cmd)
		}
	})
}
