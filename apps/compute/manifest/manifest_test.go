package manifest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
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

var testCode = []byte("\x00asm\x01\x00\x00\x00 pretend module")

func testManifest() *Manifest {
	return &Manifest{
		ModuleHash:  ModuleHash(testCode),
		ModuleSize:  uint32(len(testCode)),
		Functions:   []string{"count_words", "Main_2"},
		Permissions: PermSubCalls | PermDataSources,
		Limits:      Limits{MemoryPages: 256, TimeoutMS: 5000, MaxOutput: 1 << 20, MaxDepth: 3, MaxFanOut: 8},
		Created:     1767225600,
	}
}

func TestManifestRoundTrip(t *testing.T) {
	m := testManifest()
	b, err := m.Sign(testNet, testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	if m.Author != testKey(1).Public() {
		t.Fatal("Sign did not set the author")
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("parsed %+v, signed %+v", got, m)
	}
	if err := got.Verify(testNet); err != nil {
		t.Fatal(err)
	}
	again, err := got.Marshal()
	if err != nil || !bytes.Equal(again, b) {
		t.Fatalf("re-marshal differs (%v)", err)
	}
	if !got.Has("count_words") || !got.Has("Main_2") || got.Has("main_2") || got.Has("") {
		t.Fatal("Has answers wrongly")
	}
	if err := got.CheckCode(testCode); err != nil {
		t.Fatal(err)
	}
}

func TestManifestLargest(t *testing.T) {
	m := testManifest()
	m.Functions = nil
	for i := range MaxFunctions {
		m.Functions = append(m.Functions, strings.Repeat("f", MaxFunctionLen-2)+string(rune('A'+i/26))+string(rune('a'+i%26)))
	}
	b, err := m.Sign(strings.Repeat("n", MaxNetworkLen), testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != MaxManifestSize {
		t.Fatalf("largest manifest is %d bytes, MaxManifestSize %d", len(b), MaxManifestSize)
	}
	if _, err := Parse(b); err != nil {
		t.Fatal(err)
	}
}

func TestManifestBounds(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Manifest)
		want string
	}{
		{"zero module size", func(m *Manifest) { m.ModuleSize = 0 }, "module size 0"},
		{"huge module", func(m *Manifest) { m.ModuleSize = MaxModuleSize + 1 }, "module size"},
		{"no functions", func(m *Manifest) { m.Functions = nil }, "0 functions"},
		{"too many functions", func(m *Manifest) {
			m.Functions = nil
			for i := range MaxFunctions + 1 {
				m.Functions = append(m.Functions, "f"+strings.Repeat("x", i))
			}
		}, "65 functions"},
		{"empty name", func(m *Manifest) { m.Functions = []string{""} }, "name of 0 bytes"},
		{"long name", func(m *Manifest) { m.Functions = []string{strings.Repeat("a", 65)} }, "name of 65 bytes"},
		{"bad char", func(m *Manifest) { m.Functions = []string{"a-b"} }, "not [A-Za-z0-9_]"},
		{"duplicate", func(m *Manifest) { m.Functions = []string{"a", "b", "a"} }, "listed twice"},
		{"unknown permission", func(m *Manifest) { m.Permissions |= 1 << 2 }, "unknown bits"},
		{"zero memory", func(m *Manifest) { m.Limits.MemoryPages = 0 }, "memory limit"},
		{"huge memory", func(m *Manifest) { m.Limits.MemoryPages = MaxMemoryPages + 1 }, "memory limit"},
		{"zero timeout", func(m *Manifest) { m.Limits.TimeoutMS = 0 }, "timeout"},
		{"long timeout", func(m *Manifest) { m.Limits.TimeoutMS = MaxTimeoutMS + 1 }, "timeout"},
		{"zero output", func(m *Manifest) { m.Limits.MaxOutput = 0 }, "output limit"},
		{"huge output", func(m *Manifest) { m.Limits.MaxOutput = MaxOutputLimit + 1 }, "output limit"},
		{"deep", func(m *Manifest) { m.Limits.MaxDepth = MaxDepth + 1 }, "depth"},
		{"wide", func(m *Manifest) { m.Limits.MaxFanOut = MaxFanOut + 1 }, "fan-out"},
		{"depth without permission", func(m *Manifest) { m.Permissions = PermDataSources }, "without the sub-call permission"},
		{"permission without depth", func(m *Manifest) { m.Limits.MaxDepth = 0 }, "with the sub-call permission"},
		{"negative created", func(m *Manifest) { m.Created = -1 }, "created"},
		{"far created", func(m *Manifest) { m.Created = MaxCreated + 1 }, "created"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := testManifest()
			c.edit(m)
			_, err := m.Sign(testNet, testKey(1))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Sign: got %v, want an error containing %q", err, c.want)
			}
			// The same field arriving on the wire is refused by Parse.
			switch c.name {
			case "no functions", "too many functions", "long name", "empty name", "far created", "negative created":
				return // these break the layout itself; TestParseRefuses covers them
			}
			_, err = Parse(encodeUnchecked(m))
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Parse: got %v, want ErrMalformed containing %q", err, c.want)
			}
		})
	}
}

// encodeUnchecked encodes m without the bounds checks, for tests.
func encodeUnchecked(m *Manifest) []byte {
	return append(m.appendFields(nil), m.Signature[:]...)
}

func TestParseRefuses(t *testing.T) {
	good, err := testManifest().Sign(testNet, testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	fnStart := fixedBefore // first name length
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "shorter than the smallest"},
		{"truncated", good[:len(good)-1], "truncated after the functions"},
		{"trailing", append(bytes.Clone(good), 0), "1 trailing bytes"},
		{"too long", make([]byte, MaxManifestSize+1), "longer than the largest"},
		{"version", edit(func(b []byte) []byte { b[0] = 2; return b }), "version 2"},
		{"zero functions", edit(func(b []byte) []byte { b[69] = 0; return b }), "0 functions"},
		{"65 functions", edit(func(b []byte) []byte { b[69] = 65; return b }), "65 functions"},
		{"functions past end", edit(func(b []byte) []byte {
			b = append(b[:70:70], names(2, 64)...)
			b[69] = 64
			return b
		}), "function 2 past the end"},
		{"empty name", edit(func(b []byte) []byte { b[fnStart] = 0; return b }), "name of 0 bytes"},
		{"long name", edit(func(b []byte) []byte { b[fnStart] = 65; return b }), "name of 65 bytes"},
		{"name past end", edit(func(b []byte) []byte {
			b = append(append(b[:70:70], names(1, 64)...), 64)
			b = append(b, make([]byte, 30)...)
			b[69] = 2
			return b
		}), "function 1 past the end"},
		{"far created", edit(func(b []byte) []byte {
			binary.BigEndian.PutUint64(b[len(b)-64-8:], MaxCreated+1)
			return b
		}), "created time"},
		{"negative created", edit(func(b []byte) []byte {
			binary.BigEndian.PutUint64(b[len(b)-64-8:], 1<<63)
			return b
		}), "created time"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.b)
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want ErrMalformed containing %q", err, c.want)
			}
		})
	}
}

func TestVerifyRefuses(t *testing.T) {
	m := testManifest()
	good, err := m.Sign(testNet, testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Verify("othernet"); err == nil {
		t.Fatal("a manifest verified for another network")
	}
	if err := m.Verify(""); err == nil {
		t.Fatal("verified for an empty network")
	}
	// Flipping any bit anywhere either breaks the layout or the signature.
	for i := range good {
		b := bytes.Clone(good)
		b[i] ^= 0x01
		p, err := Parse(b)
		if err != nil {
			continue
		}
		if p.Verify(testNet) == nil {
			t.Fatalf("manifest tampered at byte %d verifies", i)
		}
	}
	// Another author's key in place of the signer's.
	p, _ := Parse(good)
	p.Author = testKey(2).Public()
	if p.Verify(testNet) == nil {
		t.Fatal("verified under another author")
	}
	// A field out of bounds set after parsing is refused before the signature.
	p, _ = Parse(good)
	p.Functions = append(p.Functions, "a-b")
	if err := p.Verify(testNet); err == nil || !strings.Contains(err.Error(), "[A-Za-z0-9_]") {
		t.Fatalf("got %v", err)
	}
	if _, err := testManifest().Sign(strings.Repeat("n", 256), testKey(1)); err == nil {
		t.Fatal("signed for a 256-byte network name")
	}
}

func TestCheckCode(t *testing.T) {
	m := testManifest()
	if err := m.CheckCode(testCode); err != nil {
		t.Fatal(err)
	}
	wrong := bytes.Clone(testCode)
	wrong[len(wrong)-1] ^= 1
	if err := m.CheckCode(wrong); err == nil || !strings.Contains(err.Error(), "do not match") {
		t.Fatalf("wrong bytes: got %v", err)
	}
	if err := m.CheckCode(testCode[1:]); err == nil || !strings.Contains(err.Error(), "manifest says") {
		t.Fatalf("wrong size: got %v", err)
	}
	if err := m.CheckCode(nil); err == nil {
		t.Fatal("empty code accepted")
	}
}

// names encodes n function names of l bytes each.
func names(n, l int) []byte {
	var b []byte
	for range n {
		b = append(b, byte(l))
		b = append(b, strings.Repeat("a", l)...)
	}
	return b
}
