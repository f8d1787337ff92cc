package main

import (
	"strings"
	"testing"
)

// darkmatter sim prints a table per N, then the growth table.
func TestSimCommand(t *testing.T) {
	out, err := runApp(t, "sim", "--nodes", "20,30", "--records", "20", "--lookups", "50")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"darkmatter sim: seed 1, 20 records, 50 lookups, churn 30%, modelled RTT 50ms",
		"N = 20 relays", "N = 30 relays",
		"converged                      yes",
		"lookups found", " of 50 (",
		"churn: 9 left, 9 joined (30 live)",
		"growth with N", "×1.5 N",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
	if _, err := runApp(t, "sim", "--nodes", "1"); err == nil || !strings.Contains(err.Error(), "--nodes") {
		t.Errorf("--nodes 1: %v", err)
	}
}
