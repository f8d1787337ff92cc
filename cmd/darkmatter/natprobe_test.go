package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var reMapped = regexp.MustCompile(`(?m)^server 127\.0\.0\.1:\d+: mapped 127\.0\.0\.1:\d+$`)

// nat probe asks a relay process's UDP port and prints the mapped address
// (loopback: no NAT); bad flags are refused before any packet is sent.
func TestNATProbe(t *testing.T) {
	bin := darkmatterBinary(t)
	_, boot := startRelay(t, bin, "relay", "--data", t.TempDir())
	out, err := runApp(t, "nat", "probe", "--bootstrap", boot, "--bind", "127.0.0.1:0", "--timeout", "2s")
	if err != nil {
		t.Fatalf("nat probe: %v\n%s", err, out)
	}
	if !reMapped.MatchString(out) || !strings.Contains(out, "public: yes") || !strings.Contains(out, "mapping: ") {
		t.Fatalf("nat probe printed\n%s", out)
	}
	for args, want := range map[string]string{
		"nat probe":                  "usage",
		"nat probe --stun host:3478": "--stun",
	} {
		if _, err := runApp(t, strings.Fields(args)...); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error with %q", args, err, want)
		}
	}
}

var reReachable = regexp.MustCompile(`reachable through 1 relay\(s\); bootstrap: (\S+@relay://\S+)`)

// A relay that reserves (--reserve 1, as behind NAT) prints a relayed
// bootstrap string; nat connect links to it through the public relay and,
// on loopback where nothing filters, punches a direct QUIC path; with
// --no-punch the link stays relayed. The public relay's status counts
// the splices.
func TestNATConnect(t *testing.T) {
	bin := darkmatterBinary(t)
	dir := t.TempDir()
	_, boot := startRelay(t, bin, "relay", "--data", filepath.Join(dir, "relay"))
	natted := startProc(t, bin, "natted", "relay", "--listen", "quic://127.0.0.1:0", "--reserve", "1",
		"--allow-private-addrs", "--bootstrap", boot, "--data", filepath.Join(dir, "natted"))
	m, err := natted.waitLine(reReachable, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	target := m[1]
	out, err := runApp(t, "nat", "connect", "--bootstrap", boot, "--data", filepath.Join(dir, "c1"), "--wait", "10s", target)
	if err != nil {
		t.Fatalf("nat connect: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`(?m)^link: relay://127\.0\.0\.1:\d+ in `).MatchString(out) ||
		!regexp.MustCompile(`(?m)^direct: quic://127\.0\.0\.1:\d+ after .* \(hole punched\)$`).MatchString(out) {
		t.Fatalf("nat connect printed\n%s", out)
	}
	out, err = runApp(t, "nat", "connect", "--bootstrap", boot, "--data", filepath.Join(dir, "c2"), "--no-punch", target)
	if err != nil {
		t.Fatalf("nat connect --no-punch: %v\n%s", err, out)
	}
	if !strings.Contains(out, "direct: none (no punch on this link)") {
		t.Fatalf("nat connect --no-punch printed\n%s", out)
	}
	if _, err := runApp(t, "nat", "connect", "--bootstrap", boot); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Fatalf("nat connect without a target: %v", err)
	}
}
