package main

import (
	"slices"
	"strings"
	"testing"
)

// Flags after the arguments of call, module publish and blob are moved
// before them; other commands are left alone.
func TestInterspersed(t *testing.T) {
	app := newApp()
	for _, c := range []struct{ in, want []string }{
		{[]string{"dm", "call", "HASH", "count", "--input", "a b", "--timeout=5s", "--allow-same-subnet"},
			[]string{"dm", "call", "--input", "a b", "--timeout=5s", "--allow-same-subnet", "--", "HASH", "count"}},
		// A value that looks like a flag stays the flag's value; "--" ends the flags.
		{[]string{"dm", "call", "--input", "--x", "H", "--", "--f"},
			[]string{"dm", "call", "--input", "--x", "--", "H", "--f"}},
		{[]string{"dm", "module", "publish", "m.wasm", "--key", "k", "--function", "count", "--subcalls"},
			[]string{"dm", "module", "publish", "--key", "k", "--function", "count", "--subcalls", "--", "m.wasm"}},
		{[]string{"dm", "blob", "put", "-", "--bootstrap", "b"},
			[]string{"dm", "blob", "put", "--bootstrap", "b", "--", "-"}},
		{[]string{"dm", "relay", "--listen", "x"}, []string{"dm", "relay", "--listen", "x"}},
		{[]string{"dm", "module"}, []string{"dm", "module"}},
		{[]string{"dm"}, []string{"dm"}},
	} {
		if got := interspersed(app, c.in); !slices.Equal(got, c.want) {
			t.Errorf("interspersed(%q)\n = %q\nwant %q", c.in, got, c.want)
		}
	}
}

// A call's usage errors exit before any network use, with the reason.
func TestCallUsageErrors(t *testing.T) {
	const h = "edb3f28861dca0c33bbc088322c65c8379d95fb970f9d371fd963a580e523a78"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"call", "--bootstrap", "x", "--", "abc", "count"}, "not a SHA-256"},
		{[]string{"call", "--bootstrap", "x", "--", h}, "usage"},
		{[]string{"call", "--bootstrap", "x", "--input", "a", "--input-file", "f", "--", h, "count"}, "one of"},
		{[]string{"call", "--bootstrap", "x", "--", h, "bad name!"}, "bad name!"},
		{[]string{"call", "--bootstrap", "x", "--module", "/nonexistent.wasm", "--", h, "count"}, "--module"},
		{[]string{"blob", "get", "--bootstrap", "x", "--", "zz"}, "not a SHA-256"},
		{[]string{"module", "publish", "--bootstrap", "x", "--key", "/nonexistent.key", "--", "/nonexistent.wasm"}, "nonexistent.wasm"},
	} {
		_, err := runApp(t, c.args...)
		if err == nil || !containsFold(err.Error(), c.want) {
			t.Errorf("%q: err %v, want one mentioning %q", c.args, err, c.want)
		}
	}
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}
