package httpproxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/darkmatter/darkmatter/internal/hserr"
	"github.com/darkmatter/darkmatter/internal/specialname"

	"github.com/darkmatter/darkmatter/internal/proxyserve/proxytest"
)

// A CONNECT or absolute-URI request to a mistyped .dark address or name
// is answered before the Dialer is asked, with 400 and a page naming the
// failed check. Neither the page nor the log names the host.
func TestDarkAddressPages(t *testing.T) {
	d := &proxytest.Dialer{Fn: proxytest.MustNotDial}
	var rec proxytest.LogRecorder
	proxy := proxytest.StartProxy(t, &Server{Dialer: d, Logf: rec.Logf})
	_, mistyped := proxytest.DarkHosts()
	badName := "400 Bad Request: " + specialname.ErrBadName.Error() + "\n"
	pages := map[string]string{
		"base32":      "400 Bad Request: mistyped .dark address: a character is not base32 (only letters and the digits 2 to 7)\n",
		"version":     "400 Bad Request: mistyped .dark address: unknown address version\n",
		"checksum":    "400 Bad Request: mistyped .dark address: bad checksum (a character is wrong)\n",
		"key":         "400 Bad Request: mistyped .dark address: it does not hold a valid service key\n",
		"name-char":   badName,
		"name-labels": badName,
		"name-56":     badName,
	}
	if len(pages) != len(mistyped) {
		t.Fatalf("%d classes of mistyped hosts, %d pages", len(mistyped), len(pages))
	}
	type tc struct {
		req  string
		code int
		page string
	}
	var cases []tc
	for class, host := range mistyped {
		cases = append(cases,
			tc{"CONNECT " + host + ":443 HTTP/1.1\r\nHost: " + host + ":443\r\n\r\n", http.StatusBadRequest, pages[class]},
			tc{"GET http://" + strings.ToUpper(host) + "/ HTTP/1.1\r\n\r\n", http.StatusBadRequest, pages[class]})
	}
	for _, tt := range cases {
		c := proxytest.Dial(t, proxy)
		write(t, c, tt.req)
		resp, body := readResponse(t, bufio.NewReader(c), "GET")
		if resp.StatusCode != tt.code || !resp.Close {
			t.Errorf("%q: status %d close=%v, want %d", tt.req, resp.StatusCode, resp.Close, tt.code)
		}
		if string(body) != tt.page {
			t.Errorf("%q: page %q, want %q", tt.req, body, tt.page)
		}
	}
	if calls := d.Calls(); len(calls) != 0 {
		t.Fatalf("Dialer called for %q", calls)
	}
	var secrets []string
	for _, h := range mistyped {
		secrets = append(secrets, h[8:30])
	}
	proxytest.CheckNoAddresses(t, rec.WaitLines(len(cases)), secrets...)
}

// A valid .dark address goes to the Dialer, which reaches hidden services
// itself; a refused client authorisation is 403, a service that never came
// to the rendezvous 504, every other hidden-service failure 502, each page
// naming the failure and never the host.
func TestDarkAddressOutcomePages(t *testing.T) {
	outcomes := []struct {
		err  *hserr.Error
		code int
	}{
		{hserr.DescriptorNotFound, http.StatusBadGateway},
		{hserr.IntroFailed, http.StatusBadGateway},
		{hserr.ClientAuthMissing, http.StatusForbidden},
		{hserr.ClientAuthWrong, http.StatusForbidden},
		{hserr.IntroTimeout, http.StatusGatewayTimeout},
	}
	var next atomic.Int32
	d := &proxytest.Dialer{Fn: func(context.Context, string) (net.Conn, error) {
		return nil, fmt.Errorf("dial: %w", outcomes[next.Add(1)-1].err)
	}}
	var rec proxytest.LogRecorder
	proxy := proxytest.StartProxy(t, &Server{Dialer: d, Logf: rec.Logf})
	valid, _ := proxytest.DarkHosts()
	for i, o := range outcomes {
		req := "CONNECT " + valid + ":443 HTTP/1.1\r\n\r\n"
		if i%2 == 1 {
			req = "GET http://www." + strings.ToUpper(valid) + ".:8080/x HTTP/1.1\r\n\r\n"
		}
		c := proxytest.Dial(t, proxy)
		write(t, c, req)
		resp, body := readResponse(t, bufio.NewReader(c), "GET")
		if resp.StatusCode != o.code || !strings.Contains(string(body), o.err.Error()) {
			t.Errorf("%v: status %d page %q, want %d", o.err, resp.StatusCode, body, o.code)
		}
	}
	if calls := d.Calls(); len(calls) != len(outcomes) {
		t.Fatalf("Dialer calls %q", calls)
	}
	proxytest.CheckNoAddresses(t, rec.Lines(), strings.TrimSuffix(valid, ".dark")[4:30])
}

// A CONNECT or absolute-URI request to a valid .dark name goes to the
// Dialer as the client wrote it, for the node to resolve: in any case,
// with trailing dots, with a label of 55 or 57 bytes (an address's has
// 56). A name nobody registered is 502, "connect failed: name not
// registered"; neither the page nor the log names the host.
func TestDarkNamePages(t *testing.T) {
	d := &proxytest.Dialer{Fn: func(context.Context, string) (net.Conn, error) {
		return nil, fmt.Errorf("overlay: %w: %w", specialname.ErrNameNotFound, errors.New("names: not found"))
	}}
	var rec proxytest.LogRecorder
	proxy := proxytest.StartProxy(t, &Server{Dialer: d, Logf: rec.Logf})
	hosts := proxytest.DarkNames()
	var targets []string
	for i, host := range hosts {
		req := "CONNECT " + host + ":443 HTTP/1.1\r\n\r\n"
		targets = append(targets, net.JoinHostPort(host, "443"))
		if i%2 == 1 {
			req = "GET http://" + host + ":8080/x HTTP/1.1\r\n\r\n"
			targets[i] = net.JoinHostPort(host, "8080")
		}
		c := proxytest.Dial(t, proxy)
		write(t, c, req)
		resp, body := readResponse(t, bufio.NewReader(c), "GET")
		if want := "502 Bad Gateway: connect failed: name not registered\n"; resp.StatusCode != http.StatusBadGateway || string(body) != want {
			t.Errorf("%s: status %d page %q, want 502 %q", host, resp.StatusCode, body, want)
		}
	}
	calls := d.Calls()
	if len(calls) != len(hosts) {
		t.Fatalf("Dialer calls %q, want one for each of %q", calls, hosts)
	}
	for i, call := range calls {
		if call.Target != targets[i] {
			t.Errorf("Dialer asked for %q, want %q", call.Target, targets[i])
		}
	}
	proxytest.CheckNoAddresses(t, rec.WaitLines(len(hosts)), "alice", "a-1.b", hosts[3][10:40])
}
