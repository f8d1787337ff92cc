package sites

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/dht"
)

func testServiceKey(b byte) *keys.ServicePrivateKey {
	var seed [keys.SeedSize]byte
	for i := range seed {
		seed[i] = b ^ byte(i*7)
	}
	return keys.ServiceFromSeed(seed)
}

func reasonOf(err error) dht.Reason {
	var re *dht.RefusedError
	if errors.As(err, &re) {
		return re.Reason
	}
	return 255
}

func hostRegistry(t *testing.T) *dht.Registry {
	t.Helper()
	g := dht.NewRegistry()
	if err := Register(g); err != nil {
		t.Fatal(err)
	}
	if err := RegisterHost(g); err != nil {
		t.Fatal(err)
	}
	if err := RegisterHost(g); err == nil {
		t.Fatal("type 8 registered twice")
	}
	return g
}

func TestHostRecordRoundTrip(t *testing.T) {
	h := HostRecord{Site: testKey(1).Public(), Seq: 0x0102030405060708}
	b := h.Marshal()
	if len(b) != HostRecordSize || b[0] != HostVersion || !bytes.Equal(b[1:33], h.Site[:]) || b[33] != 1 || b[40] != 8 {
		t.Fatalf("Marshal = %x", b)
	}
	got, err := ParseHostRecord(b)
	if err != nil || got != h {
		t.Fatalf("ParseHostRecord = %+v, %v", got, err)
	}
}

func TestParseHostRecordRefuses(t *testing.T) {
	good := HostRecord{Site: testKey(1).Public(), Seq: 1}.Marshal()
	for name, b := range map[string][]byte{
		"empty": nil, "short": good[:HostRecordSize-1], "long": append(bytes.Clone(good), 0),
		"version 0": append([]byte{0}, good[1:]...), "version 2": append([]byte{2}, good[1:]...),
	} {
		if _, err := ParseHostRecord(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// A signed host record verifies in a registry with RegisterHost; one that
// breaks the type's rule is refused as a bad key.
func TestHostSpec(t *testing.T) {
	g := hostRegistry(t)
	now := time.Unix(1767225600, 0)
	hk := testServiceKey(9)
	site := testKey(1).Public()
	r, err := HostRecord{Site: site, Seq: 4}.DHTRecord(testNet, hk, 17, now.Add(HostTTL))
	if err != nil {
		t.Fatal(err)
	}
	if r.Type != TypeHost || r.Key != HostKey(site) || r.Seq != 17 || r.Owner != keys.IdentityPublicKey(hk.Public()) {
		t.Fatalf("record %+v", r)
	}
	if err := g.Verify(r, testNet, now); err != nil {
		t.Fatal(err)
	}
	// The identity key of the same seed signs the same record.
	again := &dht.Record{Type: TypeHost, Key: HostKey(site), Seq: 17, Expires: r.Expires, Value: r.Value}
	if err := again.Sign(testNet, keys.IdentityFromSeed(hk.Seed())); err != nil || again.Signature != r.Signature {
		t.Fatalf("identity signature differs: %v", err)
	}
	got, err := HostFromDHT(r)
	if err != nil || got != (HostRecord{Site: site, Host: hk.Public(), Seq: 4}) {
		t.Fatalf("HostFromDHT = %+v, %v", got, err)
	}
	// The host key in h must be the signer's, if set.
	if _, err := (HostRecord{Site: site, Host: testServiceKey(8).Public()}).DHTRecord(testNet, hk, 1, now.Add(time.Hour)); err == nil {
		t.Fatal("signed a record of another host key")
	}
	if _, err := (HostRecord{Site: site, Host: hk.Public()}).DHTRecord(testNet, hk, 1, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}

	resign := func(r *dht.Record) *dht.Record {
		t.Helper()
		if err := r.SignWith(testNet, keys.IdentityPublicKey(hk.Public()), func(m []byte) []byte { s := hk.Sign(m); return s[:] }); err != nil {
			t.Fatal(err)
		}
		return r
	}
	otherKey := *r
	otherKey.Key = HostKey(testKey(2).Public())
	siteKey := *r
	siteKey.Key = RecordKey(site) // the type-7 key of the site
	long := *r
	long.Value = append(bytes.Clone(r.Value), 0)
	version := *r
	version.Value = append([]byte{2}, r.Value[1:]...)
	for name, c := range map[string]struct {
		r    *dht.Record
		want dht.Reason
	}{
		"other site's key": {resign(&otherKey), dht.ReasonBadKey},
		"site record key":  {resign(&siteKey), dht.ReasonBadKey},
		"long value":       {resign(&long), dht.ReasonTooLarge},
		"version":          {resign(&version), dht.ReasonBadKey},
	} {
		if got := reasonOf(g.Verify(c.r, testNet, now)); got != c.want {
			t.Errorf("%s: reason %v, want %v", name, got, c.want)
		}
	}
	// TTL: at most 3 h (plus the DHT's clock skew).
	tooLong, _ := HostRecord{Site: site, Seq: 4}.DHTRecord(testNet, hk, 17, now.Add(HostTTL+dht.ClockSkew+time.Second))
	if got := reasonOf(g.Verify(tooLong, testNet, now)); got != dht.ReasonTooLong {
		t.Errorf("4 h record: %v", got)
	}
	// Another network's signature.
	if got := reasonOf(g.Verify(r, "othernet", now)); got != dht.ReasonBadSig {
		t.Errorf("other network: %v", got)
	}
}

// An owner that is not a valid service address key (a small-order point)
// breaks the rule even when it signs.
func TestHostFromDHTRefusesBadOwner(t *testing.T) {
	site := testKey(1).Public()
	var small keys.IdentityPublicKey
	small[0] = 1 // the identity point: small order
	r := &dht.Record{Type: TypeHost, Key: HostKey(site), Owner: small, Seq: 1, Expires: 1767225600, Value: HostRecord{Site: site}.Marshal()}
	if _, err := HostFromDHT(r); err == nil {
		t.Fatal("accepted a small-order owner")
	}
	if err := HostSpec().Validate(r); err == nil {
		t.Fatal("Validate accepted a small-order owner")
	}
	r.Owner = keys.IdentityPublicKey(testServiceKey(3).Public())
	if _, err := HostFromDHT(r); err != nil {
		t.Fatal(err)
	}
	r.Type = TypeSite
	if _, err := HostFromDHT(r); err == nil {
		t.Fatal("accepted a type-7 record")
	}
}

func TestHostKeyDiffers(t *testing.T) {
	site := testKey(1).Public()
	if HostKey(site) == RecordKey(site) || HostKey(site) == HostKey(testKey(2).Public()) {
		t.Fatal("host keys collide")
	}
}
