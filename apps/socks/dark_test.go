package socks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/darkmatter/darkmatter/internal/hserr"
	"github.com/darkmatter/darkmatter/internal/specialname"

	"github.com/darkmatter/darkmatter/internal/proxyserve/proxytest"
)

// A mistyped .dark address or name is refused before the Dialer is
// asked, with 0xF6 and a log line naming the failed check; neither the
// log nor the reply names the host.
func TestDarkAddressReplies(t *testing.T) {
	d := &proxytest.Dialer{Fn: proxytest.MustNotDial}
	var rec proxytest.LogRecorder
	proxy := proxytest.StartProxy(t, &Server{Dialer: d, Logf: rec.Logf})
	_, mistyped := proxytest.DarkHosts()
	texts := map[string]string{
		"base32":      "mistyped .dark address: a character is not base32",
		"version":     "mistyped .dark address: unknown address version",
		"checksum":    "mistyped .dark address: bad checksum",
		"key":         "mistyped .dark address: it does not hold a valid service key",
		"name-char":   "mistyped .dark name: ",
		"name-labels": "mistyped .dark name: ",
		"name-56":     "mistyped .dark name: ",
	}
	if len(texts) != len(mistyped) {
		t.Fatalf("%d classes of mistyped hosts, %d texts", len(mistyped), len(texts))
	}
	type tc struct {
		host string
		want byte
		text string
	}
	var cases []tc
	for class, host := range mistyped {
		cases = append(cases, tc{host, ReplyHSBadAddress, texts[class]}, tc{strings.ToUpper(host), ReplyHSBadAddress, texts[class]})
	}
	for i, tt := range cases {
		c, code := connect(t, proxy, AtypDomain, []byte(tt.host), 443)
		if code != tt.want {
			t.Errorf("%s: reply %#x, want %#x", tt.host, code, tt.want)
		}
		expectClosed(t, c)
		lines := rec.WaitLines(i + 1)
		if len(lines) != i+1 || !strings.Contains(lines[i], tt.text) {
			t.Errorf("%s: log %q, want %q", tt.host, lines, tt.text)
		}
	}
	if calls := d.Calls(); len(calls) != 0 {
		t.Fatalf("Dialer called for %q", calls)
	}
	var secrets []string
	for _, h := range mistyped {
		secrets = append(secrets, h[8:30])
	}
	proxytest.CheckNoAddresses(t, rec.Lines(), secrets...)
}

// A valid .dark address goes to the Dialer, which reaches hidden services
// itself, in any case and under any subdomain; each way a hidden service
// can fail gets Tor's extended reply (0xF0–0xF5, 0xF7) and a log line
// naming the failure, never the address.
func TestDarkAddressOutcomes(t *testing.T) {
	outcomes := []*hserr.Error{hserr.DescriptorNotFound, hserr.DescriptorInvalid, hserr.IntroFailed,
		hserr.RendezvousFailed, hserr.ClientAuthMissing, hserr.ClientAuthWrong, hserr.IntroTimeout}
	want := []byte{0xF0, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF7}
	var next atomic.Int32
	d := &proxytest.Dialer{Fn: func(context.Context, string) (net.Conn, error) {
		return nil, fmt.Errorf("dial: %w", outcomes[next.Add(1)-1])
	}}
	var rec proxytest.LogRecorder
	proxy := proxytest.StartProxy(t, &Server{Dialer: d, Logf: rec.Logf})
	valid, _ := proxytest.DarkHosts()
	for i := range outcomes {
		host := valid
		if i%2 == 1 {
			host = "www." + strings.ToUpper(valid) + "."
		}
		c, code := connect(t, proxy, AtypDomain, []byte(host), 443)
		if code != want[i] {
			t.Errorf("%v: reply %#x, want %#x", outcomes[i], code, want[i])
		}
		expectClosed(t, c)
		if lines := rec.WaitLines(i + 1); len(lines) != i+1 || !strings.Contains(lines[i], outcomes[i].Error()) {
			t.Errorf("%v: log %q", outcomes[i], lines)
		}
	}
	calls := d.Calls()
	if len(calls) != len(outcomes) || !strings.HasPrefix(calls[0].Target, valid+":443") {
		t.Fatalf("Dialer calls %q", calls)
	}
	proxytest.CheckNoAddresses(t, rec.Lines(), strings.TrimSuffix(valid, ".dark")[4:30])
}

// A valid .dark name goes to the Dialer as the client wrote it, for the
// node to resolve: in any case, with trailing dots, and with a label of
// 55 or 57 bytes (an address's has 56). A name nobody registered is
// answered 0xF0, like a hidden service whose descriptor is not found, and
// logged as such; neither the log nor the reply names the host.
func TestDarkNames(t *testing.T) {
	d := &proxytest.Dialer{Fn: func(context.Context, string) (net.Conn, error) {
		return nil, fmt.Errorf("overlay: %w: %w", specialname.ErrNameNotFound, errors.New("names: not found"))
	}}
	var rec proxytest.LogRecorder
	proxy := proxytest.StartProxy(t, &Server{Dialer: d, Logf: rec.Logf})
	hosts := proxytest.DarkNames()
	for i, host := range hosts {
		c, code := connect(t, proxy, AtypDomain, []byte(host), 443)
		if code != ReplyHSDescNotFound {
			t.Errorf("%s: reply %#x, want %#x", host, code, ReplyHSDescNotFound)
		}
		expectClosed(t, c)
		if lines := rec.WaitLines(i + 1); len(lines) != i+1 || !strings.Contains(lines[i], "name not registered") {
			t.Errorf("%s: log %q", host, lines)
		}
	}
	calls := d.Calls()
	if len(calls) != len(hosts) {
		t.Fatalf("Dialer calls %q, want one for each of %q", calls, hosts)
	}
	for i, call := range calls {
		if call.Target != net.JoinHostPort(hosts[i], "443") {
			t.Errorf("Dialer asked for %q, want %q", call.Target, net.JoinHostPort(hosts[i], "443"))
		}
	}
	proxytest.CheckNoAddresses(t, rec.Lines(), "alice", "a-1.b", hosts[3][10:40])
}
