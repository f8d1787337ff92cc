package sites

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/apps/compute/manifest"
	"github.com/darkmatter/darkmatter/overlay/dht"
)

func TestPointerRoundTrip(t *testing.T) {
	m := testManifest()
	enc, _ := m.Sign(testNet, testKey(1))
	p := PointerFor(m, enc)
	b := p.Marshal()
	if len(b) != PointerSize {
		t.Fatalf("%d bytes", len(b))
	}
	q, err := ParsePointer(b)
	if err != nil || q != p {
		t.Fatalf("ParsePointer = %+v, %v", q, err)
	}
	got, err := q.CheckManifest(testNet, m.Site, enc)
	if err != nil || got.Seq != m.Seq {
		t.Fatal(err)
	}
	// The manifest travels as a blob: split and reassembled it checks.
	bm, chunks, hash, err := manifest.Split(enc)
	if err != nil || hash != p.Hash {
		t.Fatalf("Split: %v", err)
	}
	parsed, _ := manifest.ParseBlobManifest(bm)
	store := map[[32]byte][]byte{}
	for _, c := range chunks {
		store[manifest.BlockKey(c)] = c
	}
	out, err := parsed.Assemble(func(k [32]byte) ([]byte, error) { return store[k], nil })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.CheckManifest(testNet, m.Site, out); err != nil {
		t.Fatal(err)
	}
}

func TestParsePointerRefuses(t *testing.T) {
	good := Pointer{Seq: 1, Size: MinManifestSize}.Marshal()
	size := func(n uint32) []byte {
		b := bytes.Clone(good)
		binary.BigEndian.PutUint32(b[41:], n)
		return b
	}
	for name, b := range map[string][]byte{
		"empty": nil, "short": good[:PointerSize-1], "long": append(bytes.Clone(good), 0),
		"version": append([]byte{2}, good[1:]...), "small": size(MinManifestSize - 1), "large": size(MaxManifestSize + 1),
	} {
		if _, err := ParsePointer(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestCheckManifestRefuses(t *testing.T) {
	m := testManifest()
	enc, _ := m.Sign(testNet, testKey(1))
	p := PointerFor(m, enc)
	other := testManifest()
	otherEnc, _ := other.Sign(testNet, testKey(2))
	flipped := bytes.Clone(enc)
	flipped[len(flipped)-1] ^= 1
	cases := []struct {
		name string
		p    Pointer
		enc  []byte
		net  string
		want string
	}{
		{"size", p, enc[:len(enc)-1], testNet, "pointer says"},
		{"hash", p, flipped, testNet, "pointer's hash"},
		{"other site", PointerFor(other, otherEnc), otherEnc, testNet, "another site key"},
		{"seq", Pointer{Seq: p.Seq + 1, Hash: p.Hash, Size: p.Size}, enc, testNet, "pointer says 4"},
		{"network", p, enc, "othernet", "bad manifest signature"},
		{"malformed", Pointer{Seq: 1, Hash: sha256.Sum256([]byte("x")), Size: 1}, []byte("x"), testNet, "malformed"},
	}
	for _, c := range cases {
		if _, err := c.p.CheckManifest(c.net, m.Site, c.enc); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

func TestSpec(t *testing.T) {
	g := dht.NewRegistry()
	if err := Register(g); err != nil {
		t.Fatal(err)
	}
	if Register(g) == nil {
		t.Fatal("registered twice")
	}
	now := time.Unix(1767225600, 0)
	k := testKey(1)
	m := testManifest()
	enc, _ := m.Sign(testNet, k)
	p := PointerFor(m, enc)
	sign := func(r *dht.Record) *dht.Record {
		if err := r.Sign(testNet, k); err != nil {
			t.Fatal(err)
		}
		return r
	}
	good := sign(Record(k.Public(), p, now.Add(time.Hour)))
	if err := g.Verify(good, testNet, now); err != nil {
		t.Fatal(err)
	}
	if RecordKey(k.Public()) == RecordKey(testKey(2).Public()) {
		t.Fatal("two site keys share a record key")
	}
	bad := map[string]*dht.Record{}
	r := Record(k.Public(), p, now.Add(time.Hour))
	r.Key = RecordKey(testKey(2).Public())
	bad["key of another site"] = sign(r)
	r = Record(k.Public(), p, now.Add(time.Hour))
	r.Seq++
	bad["seq differs"] = sign(r)
	r = Record(k.Public(), p, now.Add(time.Hour))
	r.Value = r.Value[:PointerSize-1]
	bad["short value"] = sign(r)
	r = Record(k.Public(), p, now.Add(time.Hour))
	r.Value = append(r.Value, 0)
	bad["long value"] = sign(r)
	bad["too long a lifetime"] = sign(Record(k.Public(), p, now.Add(RecordTTL+time.Hour+dht.ClockSkew)))
	for name, r := range bad {
		if err := g.Verify(r, testNet, now); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
}

func TestAddress(t *testing.T) {
	site := testKey(1).Public()
	a := Address(site)
	if !strings.HasSuffix(a, ".dark") {
		t.Fatalf("address %q", a)
	}
	got, err := ParseAddress(strings.ToUpper(a))
	if err != nil || got != site {
		t.Fatalf("ParseAddress: %v", err)
	}
	if _, err := ParseAddress(a[1:]); err == nil {
		t.Fatal("a truncated address parses")
	}
}
