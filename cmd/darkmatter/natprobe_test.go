package main

import (
	"regexp"
	"strings"
	"testing"
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
