package main

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/internal/proxyserve/proxytest"
)

// halfCloseSize is the response a half-closing client must receive whole.
const halfCloseSize = 64 << 20

// startHalfCloseOrigin serves a raw TCP protocol that needs half-close:
// read the request until the client's FIN, then answer 64 MiB derived from
// the request and close.
func startHalfCloseOrigin(t *testing.T) (port int) {
	t.Helper()
	b := proxytest.StartBackend(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(2 * time.Minute))
		req, err := io.ReadAll(c) // until the client's FIN
		if err == nil {
			io.Copy(c, halfCloseBody(string(req)))
		}
	})
	_, p, _ := net.SplitHostPort(b.Addr())
	port, _ = strconv.Atoi(p)
	return port
}

// halfCloseBody is a deterministic 64 MiB answer to req.
func halfCloseBody(req string) io.Reader {
	h := sha256.Sum256([]byte(req))
	return io.LimitReader(rand.NewChaCha8(h), halfCloseSize)
}

// sendAndHalfClose writes req, shuts the write side and checks that the
// whole answer arrives.
func sendAndHalfClose(t *testing.T, c net.Conn, r io.Reader, req string) {
	t.Helper()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Minute))
	got := sha256.New()
	n, err := io.Copy(got, r)
	if err != nil || n != halfCloseSize {
		t.Fatalf("received %d of %d bytes after half-close: %v", n, halfCloseSize, err)
	}
	want := sha256.New()
	io.Copy(want, halfCloseBody(req))
	if string(got.Sum(nil)) != string(want.Sum(nil)) {
		t.Fatal("response differs")
	}
}

// A client that sends its request and shuts its write side still gets a
// 64 MiB response byte-identical, through SOCKS5 and through HTTP CONNECT:
// the half-close travels end to end (spec/streams.md §4).
func TestTestnetHalfClose(t *testing.T) {
	e := newEnv(t)
	port := startHalfCloseOrigin(t)
	t.Run("socks5", func(t *testing.T) {
		c, err := socksDial(e.fe.socksAddr, atypIPv4, "127.0.0.1", port, "", "")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		sendAndHalfClose(t, c, c, "request over socks5")
	})
	t.Run("http-connect", func(t *testing.T) {
		c, err := net.Dial("tcp", e.fe.httpAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		target := fmt.Sprintf("127.0.0.1:%d", port)
		fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("CONNECT: %v %v", resp, err)
		}
		sendAndHalfClose(t, c, br, "request over http connect")
	})
}
