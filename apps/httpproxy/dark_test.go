package httpproxy

import (
	"bufio"
	"net/http"
	"strings"
	"testing"

	"github.com/darkmatter/darkmatter/internal/proxyserve/proxytest"
)

// A CONNECT or absolute-URI request to a .dark address is answered before
// the Dialer is asked: a mistyped address with 400 and a page naming the
// failed check, a valid one with 502 and a page saying this client cannot
// reach hidden services yet. Neither the page nor the log names the host.
func TestDarkAddressPages(t *testing.T) {
	d := &proxytest.Dialer{Fn: proxytest.MustNotDial}
	var rec proxytest.LogRecorder
	proxy := proxytest.StartProxy(t, &Server{Dialer: d, Logf: rec.Logf})
	valid, mistyped := proxytest.DarkHosts()
	pages := map[string]string{
		"length":   "400 Bad Request: mistyped .dark address: wrong length (an address has 56 characters before .dark)\n",
		"base32":   "400 Bad Request: mistyped .dark address: a character is not base32 (only letters and the digits 2 to 7)\n",
		"version":  "400 Bad Request: mistyped .dark address: unknown address version\n",
		"checksum": "400 Bad Request: mistyped .dark address: bad checksum (a character is wrong)\n",
		"key":      "400 Bad Request: mistyped .dark address: it does not hold a valid service key\n",
	}
	const unreachable = "502 Bad Gateway: valid .dark address, but this client cannot reach hidden services yet\n"
	type tc struct {
		req  string
		code int
		page string
	}
	cases := []tc{
		{"CONNECT " + valid + ":443 HTTP/1.1\r\n\r\n", http.StatusBadGateway, unreachable},
		{"GET http://www." + strings.ToUpper(valid) + ".:8080/x HTTP/1.1\r\n\r\n", http.StatusBadGateway, unreachable},
	}
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
	secrets := []string{strings.TrimSuffix(valid, ".dark")[4:30]}
	for _, h := range mistyped {
		secrets = append(secrets, h[8:30])
	}
	proxytest.CheckNoAddresses(t, rec.WaitLines(len(cases)), secrets...)
}
