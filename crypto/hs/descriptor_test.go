package hs

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"

	"github.com/darkmatter/darkmatter/crypto/hsblind"
	"github.com/darkmatter/darkmatter/crypto/keys"
)

func clientKeysFor(t testing.TB, seed byte, n int) ([]*keys.ClientAuthPrivateKey, []keys.ClientAuthPublicKey) {
	t.Helper()
	r := testRand(seed)
	var priv []*keys.ClientAuthPrivateKey
	var pub []keys.ClientAuthPublicKey
	for range n {
		k, err := keys.GenerateClientAuth(r)
		if err != nil {
			t.Fatal(err)
		}
		priv = append(priv, k)
		pub = append(pub, k.Public())
	}
	return priv, pub
}

func TestDescriptorRoundTrip(t *testing.T) {
	f := newFixture(t, 20)
	d := f.descriptor(3)
	v := f.seal(t, d, nil)
	if err := CheckDescriptorValue(v); err != nil {
		t.Fatal(err)
	}
	if v[0] != DescriptorVersion || binary.BigEndian.Uint64(v[1:9]) != f.p.Number {
		t.Fatal("header is not version ‖ period number")
	}
	got, err := f.open(v, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, d) {
		t.Fatalf("got %+v\nwant %+v", got, d)
	}
	// A client key does not matter for a descriptor without client auth.
	priv, _ := clientKeysFor(t, 21, 1)
	if got, err := f.open(v, priv[0]); err != nil || !reflect.DeepEqual(got, d) {
		t.Fatalf("with a client key: %v", err)
	}
	// Sealing twice gives unrelated values (fresh salt).
	if v2 := f.seal(t, d, nil); bytes.Equal(v, v2) || len(v) != len(v2) {
		t.Fatal("two seals are equal or differ in length")
	}
	// Every number of introduction points round-trips.
	for n := 1; n <= MaxIntros; n++ {
		d := f.descriptor(n)
		if got, err := f.open(f.seal(t, d, nil), nil); err != nil || !reflect.DeepEqual(got, d) {
			t.Fatalf("%d intros: %v", n, err)
		}
	}
}

func TestDescriptorClientAuth(t *testing.T) {
	f := newFixture(t, 22)
	d := f.descriptor(2)
	priv, pub := clientKeysFor(t, 23, 20)
	v := f.seal(t, d, pub)
	for i, k := range priv {
		got, err := f.open(v, k)
		if err != nil {
			t.Fatalf("listed client %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, d) {
			t.Fatalf("client %d got another descriptor", i)
		}
	}
	outsider, _ := clientKeysFor(t, 24, 1)
	for name, k := range map[string]*keys.ClientAuthPrivateKey{"unlisted": outsider[0], "missing": nil} {
		if _, err := f.open(v, k); !errors.Is(err, ErrNotAuthorised) || errors.Is(err, ErrBadDescriptor) {
			t.Errorf("%s client key: %v, want ErrNotAuthorised only", name, err)
		}
	}
	// The list is padded: 20 clients make 32 entries, sized like 17 or 32.
	_, pub17 := clientKeysFor(t, 25, 17)
	_, pub32 := clientKeysFor(t, 26, 32)
	_, pub16 := clientKeysFor(t, 27, 16)
	if n17, n32, n16 := len(f.seal(t, d, pub17)), len(f.seal(t, d, pub32)), len(f.seal(t, d, pub16)); len(v) != n17 || len(v) != n32 || n16 != len(v)-16*clientEntryLen {
		t.Fatalf("sizes %d (20 clients), %d (17), %d (32), %d (16)", len(v), n17, n32, n16)
	}
	if want := len(f.seal(t, d, nil)) + 33 + 32*clientEntryLen; len(v) != want {
		t.Fatalf("20 clients: %d bytes, want %d", len(v), want)
	}
}

// The entries are sorted, so the real ones do not come first.
func TestDescriptorClientEntriesSorted(t *testing.T) {
	f := newFixture(t, 28)
	_, pub := clientKeysFor(t, 29, 3)
	v := f.seal(t, f.descriptor(1), pub)
	outer := f.openOuter(t, v)
	if outer[0] != authClients || outer[33] != 16 {
		t.Fatalf("auth type %d, %d entries", outer[0], outer[33])
	}
	prev := []byte{}
	for i := range 16 {
		e := outer[34+i*clientEntryLen : 34+(i+1)*clientEntryLen]
		if bytes.Compare(prev, e) > 0 {
			t.Fatalf("entry %d out of order", i)
		}
		prev = e
	}
}

// openOuter decrypts v's outer layer as the spec describes it.
func (f *fixture) openOuter(t testing.TB, v []byte) []byte {
	t.Helper()
	sub, err := Subcredential(f.network, f.id.Public(), f.blinded)
	if err != nil {
		t.Fatal(err)
	}
	o, err := aeadFor(sub[:], v[9:25], "darkmatter hsdesc outer")
	if err != nil {
		t.Fatal(err)
	}
	pt, err := o.a.Open(nil, o.nonce, v[25:], append(bytes.Clone(v[:9]), f.blinded[:]...))
	if err != nil {
		t.Fatal(err)
	}
	return pt
}

func TestDescriptorWrongContext(t *testing.T) {
	f := newFixture(t, 30)
	other := newFixture(t, 31)
	for _, clients := range []int{0, 2} {
		priv, pub := clientKeysFor(t, 32, clients)
		var k *keys.ClientAuthPrivateKey
		if clients > 0 {
			k = priv[0]
		}
		v := f.seal(t, f.descriptor(1), pub)
		for _, c := range []struct {
			name    string
			network string
			id      keys.ServicePublicKey
			p       hsblind.Period
		}{
			{"next period", f.network, f.id.Public(), f.p.Next()},
			{"same number, other length", f.network, f.id.Public(), hsblind.Period{Number: f.p.Number, Length: 12 * 60 * 60e9}},
			{"identity", f.network, other.id.Public(), f.p},
			{"network", "darkmatter", f.id.Public(), f.p},
		} {
			if _, err := OpenDescriptor(v, c.network, c.id, c.p, k); !errors.Is(err, ErrBadDescriptor) {
				t.Errorf("%d clients, wrong %s: %v", clients, c.name, err)
			}
		}
	}
}

func TestDescriptorTampered(t *testing.T) {
	f := newFixture(t, 33)
	priv, pub := clientKeysFor(t, 34, 1)
	for _, clients := range [][]keys.ClientAuthPublicKey{nil, pub} {
		v := f.seal(t, f.descriptor(2), clients)
		step := 1
		if raceEnabled {
			step = 7
		}
		for i := 0; i < len(v); i += step {
			m := bytes.Clone(v)
			m[i] ^= 0x01
			if _, err := f.open(m, priv[0]); !errors.Is(err, ErrBadDescriptor) {
				t.Fatalf("%d clients: byte %d of %d modified: %v", len(clients), i, len(v), err)
			}
		}
		for _, m := range [][]byte{nil, v[:len(v)-1], append(bytes.Clone(v), 0), v[:minValueLen-1]} {
			if _, err := f.open(m, priv[0]); !errors.Is(err, ErrBadDescriptor) {
				t.Fatalf("%d bytes: %v", len(m), err)
			}
		}
		if _, err := f.open(v, priv[0]); err != nil {
			t.Fatal(err)
		}
	}
}

// Someone who knows the address (and so the subcredential) can build any
// outer plaintext: the client still refuses malformed content.
func TestDescriptorMalformedContent(t *testing.T) {
	f := newFixture(t, 35)
	priv, pub := clientKeysFor(t, 36, 1)
	good := appendInner(nil, f.descriptor(2))
	badKEM := bytes.Clone(good)
	copy(badKEM[32:], bytes.Repeat([]byte{0xff}, 384)) // coefficients ≥ q
	for name, inner := range map[string][]byte{
		"0 intros":        append(bytes.Clone(good[:innerFixedLen-1]), 0),
		"11 intros":       append(append(bytes.Clone(good[:innerFixedLen-1]), 11), make([]byte, 11*introEntryLen)...),
		"trailing bytes":  append(bytes.Clone(good), 0),
		"short":           good[:innerFixedLen-1],
		"count too high":  append(append(bytes.Clone(good[:innerFixedLen-1]), 3), good[innerFixedLen:]...),
		"nonzero padding": append(bytes.Clone(good[:len(good)-1]), 1),
		"bad KEM key":     badKEM,
	} {
		for _, clients := range [][]keys.ClientAuthPublicKey{nil, pub} {
			v, err := sealValue(nil, inner, f.network, f.id.Public(), f.p, clients)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.open(v, priv[0]); !errors.Is(err, ErrBadDescriptor) {
				t.Errorf("%s, %d clients: %v", name, len(clients), err)
			}
		}
	}
}

func TestOpenClientBlockMalformed(t *testing.T) {
	priv, _ := clientKeysFor(t, 37, 1)
	var sub [32]byte
	salt := make([]byte, 16)
	eph := keys.ClientAuthFromBytes([32]byte{9}).Public()
	block := func(n int, entries int) []byte {
		b := append(eph[:], byte(n))
		return append(b, make([]byte, entries*clientEntryLen)...)
	}
	for name, b := range map[string][]byte{
		"truncated":        eph[:20],
		"no entries":       block(0, 0),
		"17 entries":       block(17, 17),
		"entries missing":  block(16, 15),
		"low-order eph":    append(make([]byte, 33)[:32], append([]byte{16}, make([]byte, 16*clientEntryLen)...)...),
		"low-order eph 01": append(append([]byte{1}, make([]byte, 31)...), append([]byte{16}, make([]byte, 16*clientEntryLen)...)...),
	} {
		if _, _, err := openClientBlock(b, priv[0], sub, salt); !errors.Is(err, ErrBadDescriptor) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, _, err := openClientBlock(block(16, 16), priv[0], sub, salt); !errors.Is(err, ErrNotAuthorised) {
		t.Errorf("no matching entry: %v", err)
	}
}

func TestSealDescriptorErrors(t *testing.T) {
	f := newFixture(t, 38)
	_, pub := clientKeysFor(t, 39, MaxClients+1)
	noKEM := f.descriptor(1)
	noKEM.KEM = nil
	lowOrder, _ := hex.DecodeString(lowOrderPoints[2])
	for name, c := range map[string]struct {
		d       *Descriptor
		clients []keys.ClientAuthPublicKey
	}{
		"nil":             {nil, nil},
		"no KEM":          {noKEM, nil},
		"no intros":       {f.descriptor(0), nil},
		"11 intros":       {f.descriptor(MaxIntros + 1), nil},
		"too many":        {f.descriptor(1), pub},
		"low-order":       {f.descriptor(1), []keys.ClientAuthPublicKey{pub[0], keys.ClientAuthPublicKey(lowOrder)}},
		"zero client key": {f.descriptor(1), []keys.ClientAuthPublicKey{{}}},
	} {
		if _, err := SealDescriptor(nil, c.d, f.network, f.id.Public(), f.p, c.clients); err == nil {
			t.Errorf("%s: sealed", name)
		}
	}
	if _, err := SealDescriptor(bytes.NewReader(make([]byte, 10)), f.descriptor(1), f.network, f.id.Public(), f.p, nil); err == nil {
		t.Error("short randomness accepted")
	}
	if _, err := SealDescriptor(nil, f.descriptor(1), f.network, keys.ServicePublicKey{}, f.p, nil); err == nil {
		t.Error("small-order identity accepted")
	}
}

// The worst case the design allows fits in a DHT record.
func TestDescriptorSizeBound(t *testing.T) {
	f := newFixture(t, 40)
	priv, pub := clientKeysFor(t, 41, MaxClients)
	for _, n := range []int{32, MaxClients} {
		v := f.seal(t, f.descriptor(MaxIntros), pub[:n])
		if len(v) > DescriptorMaxValue {
			t.Fatalf("%d intros, %d clients: %d bytes > %d", MaxIntros, n, len(v), DescriptorMaxValue)
		}
		if err := CheckDescriptorValue(v); err != nil {
			t.Fatal(err)
		}
		if _, err := f.open(v, priv[n-1]); err != nil {
			t.Fatal(err)
		}
		if want := map[int]int{32: 3776, MaxClients: 7360}[n]; len(v) != want {
			t.Fatalf("%d intros, %d clients: %d bytes, spec §3.7 says %d", MaxIntros, n, len(v), want)
		}
	}
	if got := len(f.seal(t, f.descriptor(MaxIntros), nil)); got != 1951 {
		t.Fatalf("%d intros, no clients: %d bytes, spec §3.7 says 1951", MaxIntros, got)
	}
	// MaxClients is the largest multiple of 16 that fits.
	if len(f.seal(t, f.descriptor(MaxIntros), pub[:MaxClients]))+clientPad*clientEntryLen <= DescriptorMaxValue {
		t.Fatal("MaxClients could be larger")
	}
	// Every descriptor lists MaxIntros slots: one introduction point
	// takes as many bytes as ten.
	if got := len(f.seal(t, f.descriptor(1), nil)); got != minValueLen || minValueLen != 1951 {
		t.Fatalf("smallest descriptor %d bytes, minValueLen %d", got, minValueLen)
	}
}

func TestCheckDescriptorValue(t *testing.T) {
	f := newFixture(t, 42)
	v := f.seal(t, f.descriptor(1), nil)
	if err := CheckDescriptorValue(v); err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(v)
	bad[0] = 2
	for name, b := range map[string][]byte{
		"version 2": bad,
		"short":     v[:minValueLen-1],
		"empty":     nil,
		"long":      make([]byte, DescriptorMaxValue+1),
	} {
		if err := CheckDescriptorValue(b); !errors.Is(err, ErrBadDescriptor) {
			t.Errorf("%s: %v", name, err)
		}
	}
	long := make([]byte, DescriptorMaxValue)
	long[0] = 1
	if err := CheckDescriptorValue(long); err != nil {
		t.Errorf("maximal value: %v", err)
	}
}

func TestDescriptorKey(t *testing.T) {
	f := newFixture(t, 43)
	next, err := hsblind.BlindPublic(f.id.Public(), f.network, f.p.Next())
	if err != nil {
		t.Fatal(err)
	}
	k1, k2 := DescriptorKey(f.blinded), DescriptorKey(next)
	if k1 == k2 {
		t.Fatal("two periods share a descriptor key")
	}
	if want := sha256.Sum256(append([]byte("darkmatter dht hsdesc\x00"), f.blinded[:]...)); k1 != want {
		t.Fatal("DescriptorKey is not SHA-256(prefix ‖ blinded key)")
	}
	s, err := Subcredential(f.network, f.id.Public(), f.blinded)
	if err != nil {
		t.Fatal(err)
	}
	id := f.id.Public()
	in := append([]byte("darkmatter hs subcredential\x00"), byte(len(f.network)))
	in = append(append(append(in, f.network...), id[:]...), f.blinded[:]...)
	if s != sha256.Sum256(in) {
		t.Fatal("subcredential differs from the spec's formula")
	}
	if _, err := Subcredential(string(make([]byte, 256)), id, f.blinded); err == nil {
		t.Fatal("256-byte network accepted")
	}
}
