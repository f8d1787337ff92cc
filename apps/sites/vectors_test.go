package sites

import (
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/testvec"
	"github.com/darkmatter/darkmatter/overlay/dht"
)

// vectorsFile is the JSON test vector file in spec/vectors for spec/sites.md.
const vectorsFile = "sites.json"

type sitesVectors struct {
	Comment   string       `json:"comment"`
	Network   string       `json:"network"`
	SiteSeed  string       `json:"site_seed"`
	Seq       uint64       `json:"seq"`
	Created   int64        `json:"created"`
	Files     []vecFile    `json:"files"`
	Handlers  []vecHandler `json:"handlers"`
	Expires   int64        `json:"expires"`
	Address   string       `json:"address"`
	Manifest  string       `json:"manifest"`
	Pointer   string       `json:"pointer"`
	RecordKey string       `json:"record_key"`
	Record    string       `json:"record"`

	// The site host record (spec/sites.md §5) of a host holding the
	// manifest above.
	HostSeed      string `json:"host_seed"`
	HostRecordSeq uint64 `json:"host_record_seq"`
	HostExpires   int64  `json:"host_expires"`
	HostKey       string `json:"host_key"`
	HostValue     string `json:"host_value"`
	HostRecord    string `json:"host_record"`
}

type vecFile struct {
	Path        string `json:"path"`
	Content     string `json:"content"` // UTF-8 text, not hex
	ContentType string `json:"content_type"`
	Hash        string `json:"hash"`
}

type vecHandler struct {
	Prefix   string `json:"prefix"`
	Module   string `json:"module"` // module bytes, UTF-8 text, not hex
	Function string `json:"function"`
}

func generateSitesVectors() *sitesVectors {
	return &sitesVectors{
		Comment: "darkmatter site vectors (spec/sites.md). Hex unless noted. site_seed is the site key's Ed25519 seed; files " +
			"(content and module are text) are listed sorted by path; manifest is the signed site manifest (Manifest.Sign for " +
			"network); pointer the DHT value naming it; record the signed type-7 DHT record under record_key. host_seed is a " +
			"hosting hidden service's Ed25519 seed; host_value the host record (manifest seq) and host_record the type-8 DHT " +
			"record it signs under host_key, with seq host_record_seq, expiring at host_expires. " +
			"Checked by apps/sites TestVectors (go test ./apps/sites -run TestVectors -update rewrites this file).",
		Network: "darkmatter", SiteSeed: hex.EncodeToString(testvec.Seq(0x30, 32)),
		Seq: 2, Created: 1767225600, Expires: 1767312000,
		HostSeed: hex.EncodeToString(testvec.Seq(0x60, 32)), HostRecordSeq: 1767225600, HostExpires: 1767225600 + 3*3600,
		Files: []vecFile{
			{Path: "/about/index.html", Content: "<h1>About</h1>\n", ContentType: "text/html; charset=utf-8"},
			{Path: "/index.html", Content: "<!doctype html><title>Demo</title><h1>Hello</h1>\n", ContentType: "text/html; charset=utf-8"},
			{Path: "/style.css", Content: "h1{color:teal}\n", ContentType: "text/css; charset=utf-8"},
		},
		Handlers: []vecHandler{{Prefix: "/words/", Module: "\x00asm\x01\x00\x00\x00 words", Function: "render"}},
	}
}

func TestVectors(t *testing.T) {
	v := testvec.LoadOrGenerate(t, vectorsFile, generateSitesVectors)
	k := keys.IdentityFromSeed([keys.SeedSize]byte(testvec.Hex(t, v.SiteSeed)))
	m := &Manifest{Seq: v.Seq, Created: v.Created}
	for i := range v.Files {
		f := &v.Files[i]
		e := Entry{Path: f.Path, Hash: sha256.Sum256([]byte(f.Content)), Size: uint64(len(f.Content)), ContentType: f.ContentType}
		testvec.CheckHex(t, "file hash "+f.Path, &f.Hash, e.Hash[:])
		m.Files = append(m.Files, e)
	}
	for _, h := range v.Handlers {
		m.Handlers = append(m.Handlers, Handler{Prefix: h.Prefix, Module: sha256.Sum256([]byte(h.Module)), Function: h.Function})
	}
	enc, err := m.Sign(v.Network, k)
	if err != nil {
		t.Fatal(err)
	}
	testvec.Check(t, "address", &v.Address, Address(k.Public()))
	testvec.CheckHex(t, "signed manifest", &v.Manifest, enc)
	p := PointerFor(m, enc)
	testvec.CheckHex(t, "pointer", &v.Pointer, p.Marshal())
	rk := RecordKey(k.Public())
	testvec.CheckHex(t, "record key", &v.RecordKey, rk[:])
	r := Record(k.Public(), p, time.Unix(v.Expires, 0))
	if err := r.Sign(v.Network, k); err != nil {
		t.Fatal(err)
	}
	testvec.CheckHex(t, "record", &v.Record, r.Marshal())

	// The file's bytes parse and verify to the same manifest.
	pr, err := dht.ParseRecord(testvec.Hex(t, v.Record))
	if err != nil {
		t.Fatal(err)
	}
	g := dht.NewRegistry()
	if err := Register(g); err != nil {
		t.Fatal(err)
	}
	if err := g.Verify(pr, v.Network, time.Unix(v.Created, 0)); err != nil {
		t.Fatal(err)
	}
	pp, err := ParsePointer(pr.Value)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pp.CheckManifest(v.Network, pr.Owner, testvec.Hex(t, v.Manifest))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Fatal("the vector manifest does not parse to the signed one")
	}
	for _, f := range v.Files {
		e, err := got.Lookup(f.Path)
		if err != nil || CheckFile(e.Entry, []byte(f.Content)) != nil {
			t.Fatalf("%s: %v", f.Path, err)
		}
	}
	checkHostVector(t, v, k.Public())
	if testvec.Update() {
		testvec.Save(t, vectorsFile, v)
	}
}

func checkHostVector(t *testing.T, v *sitesVectors, site keys.IdentityPublicKey) {
	t.Helper()
	hk := keys.ServiceFromSeed([keys.SeedSize]byte(testvec.Hex(t, v.HostSeed)))
	h := HostRecord{Site: site, Seq: v.Seq}
	key := HostKey(site)
	testvec.CheckHex(t, "host key", &v.HostKey, key[:])
	testvec.CheckHex(t, "host value", &v.HostValue, h.Marshal())
	r, err := h.DHTRecord(v.Network, hk, v.HostRecordSeq, time.Unix(v.HostExpires, 0))
	if err != nil {
		t.Fatal(err)
	}
	testvec.CheckHex(t, "host record", &v.HostRecord, r.Marshal())

	pr, err := dht.ParseRecord(testvec.Hex(t, v.HostRecord))
	if err != nil {
		t.Fatal(err)
	}
	g := dht.NewRegistry()
	if err := RegisterHost(g); err != nil {
		t.Fatal(err)
	}
	if err := g.Verify(pr, v.Network, time.Unix(v.HostExpires, 0).Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, err := HostFromDHT(pr)
	if err != nil || got != (HostRecord{Site: site, Host: hk.Public(), Seq: v.Seq}) {
		t.Fatalf("HostFromDHT = %+v, %v", got, err)
	}
}
