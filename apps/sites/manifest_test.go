package sites

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

const testNet = "darkmatter"

func testKey(b byte) *keys.IdentityPrivateKey {
	var seed [keys.SeedSize]byte
	for i := range seed {
		seed[i] = b + byte(i)
	}
	return keys.IdentityFromSeed(seed)
}

func entry(p, content, ct string) Entry {
	return Entry{Path: p, Hash: sha256.Sum256([]byte(content)), Size: uint64(len(content)), ContentType: ct}
}

func testManifest() *Manifest {
	return &Manifest{
		Seq: 3, Created: 1767225600,
		Files: []Entry{
			entry("/about/index.html", "<h1>about</h1>", "text/html; charset=utf-8"),
			entry("/index.html", "<h1>home</h1>", "text/html; charset=utf-8"),
			entry("/style.css", "body{}", "text/css; charset=utf-8"),
		},
		Handlers: []Handler{
			{Prefix: "/api/", Module: sha256.Sum256([]byte("module")), Function: "render"},
			{Prefix: "/count", Module: sha256.Sum256([]byte("module")), Function: "count_words"},
		},
	}
}

func TestManifestRoundTrip(t *testing.T) {
	m := testManifest()
	b, err := m.Sign(testNet, testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	if m.Site != testKey(1).Public() {
		t.Fatal("Sign did not set the site key")
	}
	p, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p, m) {
		t.Fatalf("parsed %+v, want %+v", p, m)
	}
	if err := p.Verify(testNet); err != nil {
		t.Fatal(err)
	}
	again, err := p.Marshal()
	if err != nil || !bytes.Equal(again, b) {
		t.Fatalf("re-marshal differs: %v", err)
	}
	if got := m.TotalSize(); got != uint64(len("<h1>about</h1><h1>home</h1>body{}")) {
		t.Fatalf("TotalSize %d", got)
	}
}

func TestManifestHandlersOnly(t *testing.T) {
	m := &Manifest{Handlers: []Handler{{Prefix: "/", Function: "f"}}}
	b, err := m.Sign(testNet, testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != MinManifestSize {
		t.Fatalf("%d bytes, want MinManifestSize %d", len(b), MinManifestSize)
	}
	if _, err := Parse(b); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyRefuses(t *testing.T) {
	m := testManifest()
	b, _ := m.Sign(testNet, testKey(1))
	if err := m.Verify("othernet"); err == nil {
		t.Fatal("verified for another network")
	}
	if err := m.Verify(""); err == nil {
		t.Fatal("verified for an empty network name")
	}
	if _, err := m.Sign(strings.Repeat("n", 256), testKey(1)); err == nil {
		t.Fatal("signed for a 256-byte network name")
	}
	// Any flipped byte either fails to parse or fails to verify.
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x01
		p, err := Parse(c)
		if err == nil && p.Verify(testNet) == nil {
			t.Fatalf("byte %d flipped still verifies", i)
		}
	}
	// Another key's signature over the same fields.
	other := testManifest()
	if _, err := other.Sign(testNet, testKey(2)); err != nil {
		t.Fatal(err)
	}
	other.Site = m.Site
	if other.Verify(testNet) == nil {
		t.Fatal("verified another key's signature")
	}
}

func TestCheckRefuses(t *testing.T) {
	long := "/" + strings.Repeat("a", MaxPathLen)
	many := func(n int) []Entry {
		es := make([]Entry, n)
		for i := range es {
			es[i] = entry("/f"+strings.Repeat("0", 5-len(itoa(i)))+itoa(i), "", "text/plain")
		}
		return es
	}
	cases := []struct {
		name string
		edit func(m *Manifest)
		want string
	}{
		{"empty", func(m *Manifest) { m.Files, m.Handlers = nil, nil }, "no files and no handlers"},
		{"too many files", func(m *Manifest) { m.Files = many(MaxFiles + 1) }, "files, want at most"},
		{"too many handlers", func(m *Manifest) {
			m.Handlers = make([]Handler, MaxHandlers+1)
			for i := range m.Handlers {
				m.Handlers[i] = Handler{Prefix: "/h" + strings.Repeat("0", 3-len(itoa(i))) + itoa(i), Function: "f"}
			}
		}, "handlers, want at most"},
		{"created", func(m *Manifest) { m.Created = -1 }, "created time"},
		{"created high", func(m *Manifest) { m.Created = MaxCreated + 1 }, "created time"},
		{"unsorted", func(m *Manifest) { m.Files[0], m.Files[1] = m.Files[1], m.Files[0] }, "unsorted or repeated"},
		{"duplicate", func(m *Manifest) { m.Files[1] = m.Files[0] }, "unsorted or repeated"},
		{"bad path", func(m *Manifest) { m.Files[0].Path = "/a/../b" }, `".." segment`},
		{"long path", func(m *Manifest) { m.Files = []Entry{entry(long, "", "x")} }, "path of"},
		{"file size", func(m *Manifest) { m.Files[0].Size = MaxFileSize + 1 }, "exceeds"},
		{"site size", func(m *Manifest) {
			m.Files = many(200)
			for i := range m.Files {
				m.Files[i].Size = MaxFileSize
			}
		}, "files total"},
		{"empty type", func(m *Manifest) { m.Files[0].ContentType = "" }, "content type of 0"},
		{"long type", func(m *Manifest) { m.Files[0].ContentType = strings.Repeat("t", MaxContentTypeLen+1) }, "content type of"},
		{"type CRLF", func(m *Manifest) { m.Files[0].ContentType = "text/html\r\nX: y" }, "not printable"},
		{"handler unsorted", func(m *Manifest) { m.Handlers[0], m.Handlers[1] = m.Handlers[1], m.Handlers[0] }, "unsorted or repeated"},
		{"handler prefix", func(m *Manifest) { m.Handlers[0].Prefix = "api/" }, "start with '/'"},
		{"handler prefix //", func(m *Manifest) { m.Handlers[0].Prefix = "/api//" }, "empty segment"},
		{"handler function", func(m *Manifest) { m.Handlers[0].Function = "bad-name" }, "not [A-Za-z0-9_]"},
		{"handler no function", func(m *Manifest) { m.Handlers[0].Function = "" }, "name of 0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := testManifest()
			c.edit(m)
			_, err := m.Sign(testNet, testKey(1))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Sign: %v, want %q", err, c.want)
			}
			// The same fields, encoded unchecked, do not parse.
			b := append(m.appendFields(nil), make([]byte, keys.SignatureSize)...)
			if _, err := Parse(b); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse: %v", err)
			}
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestParseRefuses(t *testing.T) {
	good, _ := testManifest().Sign(testNet, testKey(1))
	body := good[:len(good)-keys.SignatureSize]
	sig := good[len(good)-keys.SignatureSize:]
	nh := testManifest()
	nh.Handlers = nil
	noHandlers := nh.appendFields(nil)
	withBody := func(b []byte) []byte { return append(bytes.Clone(b), sig...) }
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "shorter than"},
		{"short", good[:MinManifestSize-1], "shorter than"},
		{"long", make([]byte, MaxManifestSize+1), "longer than"},
		{"version", append([]byte{2}, good[1:]...), "version 2"},
		{"trailing", withBody(append(bytes.Clone(body), 0)), "trailing"},
		{"truncated", good[:len(good)-1], "past the end"},
		{"no handler count", withBody(noHandlers[:len(noHandlers)-1]), "truncated before the handler count"},
		{"file count", withBody(setU16(body, headerSize-2, MaxFiles+1)), "files, want at most"},
		{"path length", withBody(setU16(body, headerSize, MaxPathLen+1)), "over 1024"},
		{"created", withBody(setU64(body, 1+32+8, MaxCreated+1)), "created time"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Parse(c.b)
			if err == nil || m != nil || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Parse: %v, want %q", err, c.want)
			}
		})
	}
}

func setU16(b []byte, at int, v uint16) []byte {
	c := bytes.Clone(b)
	binary.BigEndian.PutUint16(c[at:], v)
	return c
}

func setU64(b []byte, at int, v uint64) []byte {
	c := bytes.Clone(b)
	binary.BigEndian.PutUint64(c[at:], v)
	return c
}

func TestReplaces(t *testing.T) {
	older, newer := testManifest(), testManifest()
	newer.Seq = older.Seq + 1
	older.Sign(testNet, testKey(1))
	newer.Sign(testNet, testKey(1))
	if err := newer.Replaces(older); err != nil {
		t.Fatal(err)
	}
	if older.Replaces(newer) == nil {
		t.Fatal("a lower seq replaces a higher one")
	}
	if older.Replaces(older) == nil {
		t.Fatal("an equal seq replaces")
	}
	other := testManifest()
	other.Seq = 99
	other.Sign(testNet, testKey(2))
	if other.Replaces(older) == nil {
		t.Fatal("another site's manifest replaces")
	}
}

func TestCheckFile(t *testing.T) {
	e := entry("/index.html", "<h1>home</h1>", "text/html")
	if err := CheckFile(e, []byte("<h1>home</h1>")); err != nil {
		t.Fatal(err)
	}
	if CheckFile(e, []byte("<h1>HOME</h1>")) == nil {
		t.Fatal("a tampered file of the same size passes")
	}
	if CheckFile(e, []byte("<h1>home</h1>!")) == nil {
		t.Fatal("a longer file passes")
	}
	if CheckFile(e, nil) == nil {
		t.Fatal("an empty file passes")
	}
}
