package sites

import (
	"bytes"
	"strings"
	"testing"

	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/dht"
)

func FuzzParseManifest(f *testing.F) {
	good, _ := testManifest().Sign(testNet, testKey(1))
	f.Add(good)
	f.Add(good[:len(good)-1])
	h, _ := (&Manifest{Handlers: []Handler{{Prefix: "/", Function: "f"}}}).Sign(testNet, testKey(1))
	f.Add(h)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			if m != nil {
				t.Fatal("a manifest with an error")
			}
			return
		}
		// Whatever parses re-encodes to the same bytes, and Verify and
		// Lookup answer without panicking.
		again, err := m.Marshal()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-marshal: %v", err)
		}
		_ = m.Verify(testNet)
		for _, e := range m.Files {
			if got, err := m.Lookup(e.Path); err != nil || got.Kind != File || got.Entry != e {
				t.Fatalf("Lookup(%q) = %+v, %v", e.Path, got, err)
			}
		}
	})
}

func FuzzParsePointer(f *testing.F) {
	f.Add(Pointer{Seq: 7, Size: 200}.Marshal())
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePointer(b)
		if err != nil {
			return
		}
		if !bytes.Equal(p.Marshal(), b) {
			t.Fatal("re-marshal differs")
		}
		if _, err := p.CheckManifest(testNet, testKey(1).Public(), b); err == nil {
			t.Fatal("a pointer checks as its own manifest")
		}
	})
}

func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"/", "//a/./b/", "/a/../b", "/é", "/a\\b", "/" + strings.Repeat("./", 10)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := CleanPath(s)
		if err != nil {
			return
		}
		// The result is clean, a canonical path or a directory of one.
		if again, err := CleanPath(c); err != nil || again != c {
			t.Fatalf("CleanPath(%q) = %q, again %q, %v", s, c, again, err)
		}
		if strings.HasSuffix(c, "/") {
			if c != "/" && CheckPath(c[:len(c)-1]) != nil {
				t.Fatalf("CleanPath(%q) = %q: not a directory of a canonical path", s, c)
			}
		} else if err := CheckPath(c); err != nil {
			t.Fatalf("CleanPath(%q) = %q: %v", s, c, err)
		}
		if strings.Contains(c, "/../") || strings.HasSuffix(c, "/..") {
			t.Fatalf("CleanPath(%q) = %q keeps '..'", s, c)
		}
	})
}

func FuzzParseHostRecord(f *testing.F) {
	f.Add(HostRecord{Site: testKey(1).Public(), Seq: 3}.Marshal())
	f.Add([]byte{HostVersion})
	f.Add(make([]byte, HostRecordSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHostRecord(b)
		if err != nil {
			return
		}
		if !bytes.Equal(h.Marshal(), b) || h.Host != (keys.ServicePublicKey{}) {
			t.Fatal("re-marshal differs")
		}
		// Under its site's key and a valid owner it is a valid record.
		r := &dht.Record{Type: TypeHost, Key: HostKey(h.Site), Owner: keys.IdentityPublicKey(testServiceKey(1).Public()), Value: b}
		if got, err := HostFromDHT(r); err != nil || got.Site != h.Site || got.Seq != h.Seq {
			t.Fatalf("HostFromDHT = %+v, %v", got, err)
		}
	})
}

func FuzzParseHandlerOutput(f *testing.F) {
	for _, s := range []string{"Content-Type: text/html\r\n\r\n<p>", "Status: 404 x\nContent-Type: a\n\n", "X: y\n\n", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		res, err := ParseHandlerOutput(b)
		if err != nil {
			return
		}
		// The status is allowed, the content type is a safe header value,
		// and the body is what follows a header block of the allowed size.
		if res.Status < 200 || res.Status > 599 {
			t.Fatalf("status %d", res.Status)
		}
		if checkContentType(res.ContentType) != nil {
			t.Fatalf("content type %q", res.ContentType)
		}
		if !bytes.HasSuffix(b, res.Body) || len(b)-len(res.Body) > MaxHandlerHeader {
			t.Fatalf("body of %d bytes after %d header bytes", len(res.Body), len(b)-len(res.Body))
		}
	})
}
