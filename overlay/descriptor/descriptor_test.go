package descriptor

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit/exitpolicy"
	"github.com/darkmatter/darkmatter/circuit/protover"
	"github.com/darkmatter/darkmatter/crypto/keys"
)

func seq(start byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

// testKeys are the keys of the vector descriptor: identity seed 00..1f,
// link key 20..3f, onion key 40..5f, KEM seed 00..3f.
func testKeys() *keys.NodeKeys {
	return &keys.NodeKeys{
		Identity: keys.IdentityFromSeed([32]byte(seq(0, 32))),
		Link:     keys.LinkFromBytes([32]byte(seq(32, 32))),
		Onion:    keys.OnionFromBytes([32]byte(seq(64, 32))),
		KEM:      keys.KEMFromSeed([64]byte(seq(0, 64))),
	}
}

var testPublished = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// testDescriptor returns a signed descriptor with every field set.
func testDescriptor() (*Descriptor, *keys.NodeKeys) {
	k := testKeys()
	d := &Descriptor{
		Network:      "darkmatter",
		Link:         k.Link.Public(),
		Onion:        k.Onion.Public(),
		OnionExpires: testPublished.Add(7 * 24 * time.Hour),
		KEM:          *k.KEM.Public(),
		Addrs:        []string{"tcp://192.0.2.1:9001", "tcp://[2001:db8::1]:9001", "quic://relay.example.org:443"},
		ExitPolicy:   "reject private:*,accept *:80,accept *:443,reject *:*",
		Bandwidth:    10_000_000,
		Protocols:    testProtocols,
		Published:    testPublished,
		extensions:   []extension{{7, []byte("family")}, {0xfff0, nil}},
	}
	d.Sign(k.Identity)
	return d, k
}

var testProtocols = protover.New(map[protover.ID]string{protover.Link: "1", protover.Relay: "1-2", protover.Exit: "1", protover.Dir: "1-2", 200: "3"})

// sameFields compares the exported fields.
func sameFields(a, b *Descriptor) bool {
	a2, b2 := *a, *b
	a2.policy, a2.policyFor, b2.policy, b2.policyFor = nil, "", nil, ""
	if len(a2.Addrs) == 0 && len(b2.Addrs) == 0 {
		a2.Addrs, b2.Addrs = nil, nil
	}
	return reflect.DeepEqual(a2, b2)
}

func TestRoundTrip(t *testing.T) {
	d, k := testDescriptor()
	if d.Identity != k.Identity.Public() {
		t.Fatal("Sign did not set Identity")
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	b := d.Marshal()
	if len(b) > MaxSize {
		t.Fatalf("%d bytes", len(b))
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !sameFields(got, d) {
		t.Fatalf("round trip differs:\n got %+v\nwant %+v", got, d)
	}
	if !bytes.Equal(got.Marshal(), b) {
		t.Fatal("re-marshal differs")
	}
	if got.NodeID() != k.Identity.Public().NodeID() || got.NodeID() != k.NodeID() {
		t.Fatal("NodeID wrong")
	}
	// Minimal descriptor: no addresses, non-exit.
	small := &Descriptor{Network: "n", KEM: d.KEM, OnionExpires: time.Unix(2, 0).UTC(), Published: time.Unix(1, 0).UTC(), ExitPolicy: "reject *:*"}
	small.Sign(k.Identity)
	if len(small.Marshal()) != minSize {
		t.Fatalf("minimal descriptor is %d bytes, minSize %d", len(small.Marshal()), minSize)
	}
	got, err = Parse(small.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if !sameFields(got, small) || got.Addrs != nil {
		t.Fatalf("minimal round trip differs: %+v", got)
	}
	if got.Bootstrap().Addr != "" {
		t.Fatal("Bootstrap of a descriptor without addresses has an address")
	}
	// Sub-second times are cut to seconds by the wire format and the
	// signature covers the cut value.
	d.Published = d.Published.Add(300 * time.Millisecond)
	d.Sign(k.Identity)
	got, err = Parse(d.Marshal())
	if err != nil || !got.Published.Equal(testPublished) {
		t.Fatalf("sub-second publication time: %v, %v", got, err)
	}
}

func TestTamperEveryByte(t *testing.T) {
	d, _ := testDescriptor()
	b := d.Marshal()
	for i := range b {
		for _, flip := range []byte{0x01, 0x80} {
			c := bytes.Clone(b)
			c[i] ^= flip
			if _, err := Parse(c); err == nil {
				t.Fatalf("flipping bit %#x of byte %d went unnoticed", flip, i)
			}
		}
	}
	// Truncations and extensions.
	for n := range len(b) {
		if _, err := Parse(b[:n]); err == nil {
			t.Fatalf("truncation to %d bytes accepted", n)
		}
	}
	if _, err := Parse(append(bytes.Clone(b), 0)); err == nil {
		t.Fatal("trailing byte accepted")
	}
}

func TestSignatureChecks(t *testing.T) {
	d, _ := testDescriptor()
	other := keys.IdentityFromSeed([32]byte{0xee})
	// Signed by another key but claiming the first identity.
	e := *d
	e.Sign(other)
	e.Identity = d.Identity
	if _, err := Parse(e.Marshal()); !errors.Is(err, ErrSignature) {
		t.Fatalf("error = %v, want ErrSignature", err)
	}
	// A field changed after signing.
	e = *d
	e.Bandwidth++
	if _, err := Parse(e.Marshal()); !errors.Is(err, ErrSignature) {
		t.Fatalf("error = %v, want ErrSignature", err)
	}
	// A plain signature of the body without the context string.
	e = *d
	var k = testKeys().Identity
	e.Signature = k.Sign(e.marshalBody())
	if _, err := Parse(e.Marshal()); !errors.Is(err, ErrSignature) {
		t.Fatalf("signature without context: error = %v, want ErrSignature", err)
	}
}

func TestLimits(t *testing.T) {
	k := testKeys()
	tests := []struct {
		name   string
		modify func(d *Descriptor)
		want   string
	}{
		{"empty network", func(d *Descriptor) { d.Network = "" }, "network name is 0 bytes"},
		{"long network", func(d *Descriptor) { d.Network = strings.Repeat("n", 65) }, "network name is 65 bytes"},
		{"control in network", func(d *Descriptor) { d.Network = "dark\nmatter" }, "control character"},
		{"bad UTF-8 network", func(d *Descriptor) { d.Network = "dark\xffmatter" }, "not UTF-8"},
		{"too many addrs", func(d *Descriptor) {
			d.Addrs = nil
			for i := range 9 {
				d.Addrs = append(d.Addrs, "10.0.0."+string(rune('1'+i))+":1")
			}
		}, "9 addresses"},
		{"long addr", func(d *Descriptor) { d.Addrs = []string{strings.Repeat("a", 247) + ":80"} }, "address is 256 bytes"},
		{"long addr with scheme", func(d *Descriptor) { d.Addrs = []string{"quic://" + strings.Repeat("a", 246) + ":80"} }, "address is 256 bytes"},
		{"duplicate addr", func(d *Descriptor) { d.Addrs = []string{"1.2.3.4:5", "1.2.3.4:5"} }, "listed twice"},
		{"duplicate after normalisation", func(d *Descriptor) { d.Addrs = []string{"tcp://1.2.3.4:5", "1.2.3.4:5"} }, "listed twice"},
		{"empty addr", func(d *Descriptor) { d.Addrs = []string{""} }, "address is 0 bytes"},
		{"empty scheme", func(d *Descriptor) { d.Addrs = []string{"://1.2.3.4:5"} }, "scheme is 0 bytes"},
		{"long scheme", func(d *Descriptor) { d.Addrs = []string{strings.Repeat("q", 17) + "://1.2.3.4:5"} }, "scheme is 17 bytes"},
		{"uppercase scheme", func(d *Descriptor) { d.Addrs = []string{"TCP://1.2.3.4:5"} }, "not [a-z][a-z0-9]*"},
		{"scheme starts with a digit", func(d *Descriptor) { d.Addrs = []string{"4tcp://1.2.3.4:5"} }, "not [a-z][a-z0-9]*"},
		{"scheme with a dash", func(d *Descriptor) { d.Addrs = []string{"tc-p://1.2.3.4:5"} }, "not [a-z][a-z0-9]*"},
		{"two schemes", func(d *Descriptor) { d.Addrs = []string{"tcp://tcp://1.2.3.4:5"} }, "not host:port"},
		{"slash in the host", func(d *Descriptor) { d.Addrs = []string{"tcp://a/b:5"} }, "neither an IP"},
		{"scheme without host", func(d *Descriptor) { d.Addrs = []string{"tcp://"} }, "address is 0 bytes"},
		{"too many protocols", func(d *Descriptor) {
			d.Protocols = protover.Set{}
			for id := range 65 {
				d.Protocols = d.Protocols.With(protover.ID(id), 1)
			}
		}, "65 protocols, at most 64"},
		{"extensions out of order", func(d *Descriptor) { d.extensions = []extension{{2, nil}, {1, nil}} }, "type 1 follows type 2"},
		{"duplicate extension", func(d *Descriptor) { d.extensions = []extension{{1, []byte{1}}, {1, []byte{2}}} }, "type 1 appears twice"},
		{"too many extensions", func(d *Descriptor) {
			d.extensions = nil
			for i := range MaxExtensions + 1 {
				d.extensions = append(d.extensions, extension{uint16(i), nil})
			}
		}, "65 extensions, at most 64"},
		{"huge extension", func(d *Descriptor) { d.extensions = []extension{{1, make([]byte, 65536)}} }, "more than 4000"},
		{"no port", func(d *Descriptor) { d.Addrs = []string{"1.2.3.4"} }, "not host:port"},
		{"port 0", func(d *Descriptor) { d.Addrs = []string{"1.2.3.4:0"} }, "port is not"},
		{"port 65536", func(d *Descriptor) { d.Addrs = []string{"1.2.3.4:65536"} }, "port is not"},
		{"port leading zero", func(d *Descriptor) { d.Addrs = []string{"1.2.3.4:080"} }, "port is not"},
		{"named port", func(d *Descriptor) { d.Addrs = []string{"1.2.3.4:http"} }, "port is not"},
		{"no host", func(d *Descriptor) { d.Addrs = []string{":80"} }, "no host"},
		{"unbracketed IPv6", func(d *Descriptor) { d.Addrs = []string{"::1:80"} }, "not host:port"},
		{"bracketed IPv4", func(d *Descriptor) { d.Addrs = []string{"[1.2.3.4]:80"} }, "only IPv6"},
		{"bracketed name", func(d *Descriptor) { d.Addrs = []string{"[example.org]:80"} }, "brackets hold only IPv6"},
		{"zone", func(d *Descriptor) { d.Addrs = []string{"[fe80::1%eth0]:80"} }, "zones"},
		{"bad host", func(d *Descriptor) { d.Addrs = []string{"exa mple.org:80"} }, "neither an IP"},
		{"empty policy", func(d *Descriptor) { d.ExitPolicy = "" }, "empty policy"},
		{"bad policy", func(d *Descriptor) { d.ExitPolicy = "allow *:*" }, "unknown action"},
		{"non-canonical policy", func(d *Descriptor) { d.ExitPolicy = "accept *" }, "not in canonical form"},
		{"long policy", func(d *Descriptor) {
			d.ExitPolicy = strings.TrimSuffix(strings.Repeat("accept 1.2.3.4:80,", 57), ",")
		}, "exit policy is 1025 bytes"},
		{"zero published", func(d *Descriptor) { d.Published = time.Time{} }, "publication time -62135596800 is out of range"},
		{"published 0", func(d *Descriptor) { d.Published = time.Unix(0, 0) }, "out of range"},
		{"published year 10000", func(d *Descriptor) { d.Published = time.Unix(MaxUnixTime+1, 0) }, "out of range"},
		{"zero onion expiry", func(d *Descriptor) { d.OnionExpires = time.Time{} }, "onion key expiry"},
		{"onion expires at publication", func(d *Descriptor) { d.OnionExpires = d.Published }, "before it is published"},
		{"malformed KEM key", func(d *Descriptor) {
			for i := range 384 {
				d.KEM[i] = 0xff
			}
		}, "malformed ML-KEM-768 public key"},
		{"too big", func(d *Descriptor) {
			d.Addrs = nil
			for i := range 8 {
				d.Addrs = append(d.Addrs, strings.Repeat("a", 240)+"."+string(rune('a'+i))+":1")
			}
			d.ExitPolicy = strings.TrimSuffix(strings.Repeat("accept 1.2.3.4:80,", 56), ",")
		}, "more than 4000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, _ := testDescriptor()
			tt.modify(d)
			d.Sign(k.Identity)
			err := d.Validate()
			if err == nil || !strings.HasPrefix(err.Error(), "descriptor: ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate error = %v, want a descriptor: error containing %q", err, tt.want)
			}
			b := d.Marshal()
			_, err = Parse(b)
			if err == nil || !strings.HasPrefix(err.Error(), "descriptor: ") {
				t.Fatalf("Parse error = %v, want a descriptor: error", err)
			}
		})
	}
	// Exactly at the limits is fine.
	d, _ := testDescriptor()
	d.Network = strings.Repeat("n", MaxNetworkLen)
	d.Addrs = []string{strings.Repeat("a", 243) + ":65535", "[::1]:1", "a:1", "A-b.c:2", "1.2.3.4:5", "b:1", "c:1",
		strings.Repeat("z", MaxSchemeLen) + "://d:1"}
	d.Protocols = protover.Set{}
	for id := range protover.MaxEntries {
		d.Protocols = d.Protocols.With(protover.ID(255-id), protover.MaxVersion)
	}
	d.extensions = []extension{{0, nil}, {1, []byte{0}}, {0xffff, make([]byte, 100)}}
	d.ExitPolicy = strings.Repeat("accept 1.2.3.4:80,", 56) + "accept 1.2.3.4:8"
	if len(d.ExitPolicy) != MaxExitPolicyLen {
		t.Fatalf("test setup: policy %d bytes", len(d.ExitPolicy))
	}
	d.Published = time.Unix(MaxUnixTime-1, 0).UTC()
	d.OnionExpires = time.Unix(MaxUnixTime, 0).UTC()
	d.Sign(k.Identity)
	if len(d.Addrs[0]) != MaxAddrLen {
		t.Fatalf("test setup: address %d bytes", len(d.Addrs[0]))
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	got, err := Parse(d.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if !sameFields(got, d) {
		t.Fatalf("descriptor at the limits does not round-trip: %+v", got)
	}
}

func TestParseRefusesBadHeader(t *testing.T) {
	d, _ := testDescriptor()
	b := d.Marshal()
	for _, tt := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"huge", make([]byte, MaxSize+1), "more than 4000"},
		{"magic", append([]byte("XMRD"), b[4:]...), "bad magic"},
		{"version 0", append(append([]byte("DMRD"), 0), b[5:]...), "unsupported version 0"},
		{"version 1 (never deployed)", append(append([]byte("DMRD"), 1), b[5:]...), "unsupported version 1"},
		{"version 3", append(append([]byte("DMRD"), 3), b[5:]...), "unsupported version 3"},
	} {
		if _, err := Parse(tt.b); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error = %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestPolicy(t *testing.T) {
	d, _ := testDescriptor()
	got, err := Parse(d.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	p := got.Policy()
	if p.String() != d.ExitPolicy || !p.IsExit() || !p.AllowsPort(443) || p.AllowsPort(22) {
		t.Fatalf("Policy() = %v", p)
	}
	if p.Allows(netip.MustParseAddr("127.0.0.1"), 80) {
		t.Fatal("policy allows loopback")
	}
	// A changed ExitPolicy is re-parsed, not served from the cache.
	got.ExitPolicy = "accept *:*"
	if !got.Policy().Equal(exitpolicy.AcceptAll()) {
		t.Fatalf("Policy() after change = %v", got.Policy())
	}
	got.ExitPolicy = "nonsense"
	if !got.Policy().Equal(exitpolicy.RejectAll()) || got.Policy().IsExit() {
		t.Fatal("unparsable policy is not RejectAll")
	}
	fresh := &Descriptor{ExitPolicy: "reject private:*,accept *:*"}
	if !fresh.Policy().Equal(exitpolicy.Default()) {
		t.Fatal("Policy() of an unparsed descriptor")
	}
}

func TestCheckTime(t *testing.T) {
	d, _ := testDescriptor()
	for _, tt := range []struct {
		now     time.Time
		want    error
		expired bool
	}{
		{testPublished, nil, false},
		{testPublished.Add(-MaxClockSkew), nil, false},
		{testPublished.Add(-MaxClockSkew - time.Second), ErrFromTheFuture, false},
		{testPublished.Add(MaxAge), nil, false},
		{testPublished.Add(MaxAge + time.Second), ErrTooOld, true},
	} {
		err := d.CheckTime(tt.now)
		if !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
			t.Errorf("CheckTime(%v) = %v, want %v", tt.now, err, tt.want)
		}
		if d.Expired(tt.now) != tt.expired {
			t.Errorf("Expired(%v) = %v", tt.now, !tt.expired)
		}
	}
	d.OnionExpires = testPublished.Add(time.Hour)
	if err := d.CheckTime(testPublished.Add(time.Hour)); !errors.Is(err, ErrOnionExpired) {
		t.Fatalf("CheckTime at onion expiry = %v", err)
	}
	if !d.Expired(testPublished.Add(time.Hour)) || d.Expired(testPublished.Add(time.Hour-time.Second)) {
		t.Fatal("Expired ignores the onion key expiry")
	}
}
