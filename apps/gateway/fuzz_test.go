package gateway

import (
	"strings"
	"testing"
)

// FuzzParseHost checks that parseHost never panics, that a site it accepts
// is canonical (parsing it again gives the same site) and is an address
// the gateway's dialler accepts.
func FuzzParseHost(f *testing.F) {
	k := testKey(1)
	for _, s := range []string{"alice.gw.test", "gw.test", "GW.test", "blog.alice.gw.test", k + ".gw.test", "www." + k + ".gw.test",
		"alice.dark.gw.test", "127.0.0.1", "[::1]:80", "alice.gw.test:80", "a_b.gw.test", ".gw.test", "a..b.gw.test", "xn--a.gw.test"} {
		f.Add(s)
	}
	d := domain{host: "gw.test"}
	f.Fuzz(func(t *testing.T, host string) {
		site, kind, err := parseHost(host, d)
		if kind != hostSite || err != nil {
			if kind == hostSite && err == nil {
				t.Fatal("site without error and empty")
			}
			return
		}
		if site == "" || site != strings.ToLower(site) {
			t.Fatalf("site %q not canonical", site)
		}
		again, kind2, err := parseHost(site+".gw.test", d)
		if again != site || kind2 != hostSite || err != nil {
			t.Fatalf("%q: reparsed as %q %v %v", site, again, kind2, err)
		}
		if c, err := canonicalSite(site); c != site || err != nil {
			t.Fatalf("%q: canonicalSite %q %v", site, c, err)
		}
	})
}
