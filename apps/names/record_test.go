package names

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRecordRoundTrip(t *testing.T) {
	r := &Record{Name: "blog.alice", Registered: epoch, Expires: epoch.Add(MaxTTL), Nonce: 0x0102030405060708,
		Entries: []Entry{AddressEntry(service(1)), TextEntry(""), TextEntry(strings.Repeat("é", 127)), ModuleEntry([32]byte{1}), SiteEntry([32]byte{2})}}
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p, r) {
		t.Fatalf("round trip:\n%+v\n%+v", p, r)
	}
	if a, ok := p.Entries[0].Address(); !ok || a != service(1).Address() {
		t.Fatal("address entry")
	}
	if _, ok := p.Entries[1].Address(); ok {
		t.Fatal("text entry read as an address")
	}
	// The largest record.
	big := &Record{Name: strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61),
		Registered: epoch, Expires: epoch.Add(time.Hour)}
	for range MaxEntries {
		big.Entries = append(big.Entries, TextEntry(strings.Repeat("t", MaxTextLen)))
	}
	if b, err := big.Marshal(); err != nil || len(b) != MaxRecordSize {
		t.Fatalf("largest record: %d bytes, %v; want %d", len(b), err, MaxRecordSize)
	}
}

func TestMarshalRefuses(t *testing.T) {
	ok := func() *Record {
		return &Record{Name: "alice", Registered: epoch, Expires: epoch.Add(time.Hour)}
	}
	var badKey [32]byte // all zero: not a prime-order point
	cases := map[string]func(r *Record){
		"non-canonical name":   func(r *Record) { r.Name = "Alice" },
		"invalid name":         func(r *Record) { r.Name = "-a" },
		"expires = registered": func(r *Record) { r.Expires = r.Registered },
		"registered 0":         func(r *Record) { r.Registered = time.Unix(0, 0) },
		"expiry past 9999":     func(r *Record) { r.Expires = time.Unix(maxTime+1, 0) },
		"too many entries":     func(r *Record) { r.Entries = make([]Entry, MaxEntries+1) },
		"unknown entry":        func(r *Record) { r.Entries = []Entry{{Type: 9, Data: nil}} },
		"short address":        func(r *Record) { r.Entries = []Entry{{EntryAddress, make([]byte, 31)}} },
		"invalid key":          func(r *Record) { r.Entries = []Entry{{EntryAddress, badKey[:]}} },
		"long text":            func(r *Record) { r.Entries = []Entry{TextEntry(strings.Repeat("x", 256))} },
		"invalid UTF-8":        func(r *Record) { r.Entries = []Entry{TextEntry("\xff")} },
		"short module":         func(r *Record) { r.Entries = []Entry{{EntryModule, make([]byte, 33)}} },
		"short site":           func(r *Record) { r.Entries = []Entry{{EntrySite, nil}} },
	}
	if _, err := ok().Marshal(); err != nil {
		t.Fatal(err)
	}
	for name, f := range cases {
		r := ok()
		f(r)
		if _, err := r.Marshal(); err == nil {
			t.Errorf("%s: marshalled", name)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	good, err := (&Record{Name: "ab", Registered: epoch, Expires: epoch.Add(time.Hour), Entries: []Entry{TextEntry("hi")}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// Layout: 0 version, 1 name length, 2..3 name, 4 registered, 12
	// expires, 20 nonce, 28 count, 29 entry type, 30 entry length, 31 data.
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	cases := map[string][]byte{
		"empty":             nil,
		"version 2":         mod(func(b []byte) []byte { b[0] = 2; return b }),
		"name length past":  mod(func(b []byte) []byte { b[1] = 200; return b }),
		"empty name":        append([]byte{1, 0}, good[4:]...),
		"uppercase name":    mod(func(b []byte) []byte { b[2] = 'A'; return b }),
		"registered 0":      mod(func(b []byte) []byte { clear(b[4:12]); return b }),
		"expires before":    mod(func(b []byte) []byte { copy(b[12:20], b[4:12]); return b }),
		"expires past 9999": mod(func(b []byte) []byte { b[12] = 0x7f; return b }),
		"count 17":          mod(func(b []byte) []byte { b[28] = 17; return b }),
		"count past end":    mod(func(b []byte) []byte { b[28] = 2; return b }),
		"entry length past": mod(func(b []byte) []byte { b[30] = 3; return b }),
		"unknown entry":     mod(func(b []byte) []byte { b[29] = 5; return b }),
		"address of 2":      mod(func(b []byte) []byte { b[29] = byte(EntryAddress); return b }),
		"trailing byte":     mod(func(b []byte) []byte { return append(b, 0) }),
		"truncated":         good[:len(good)-1],
		"oversize":          make([]byte, MaxRecordSize+1),
	}
	if _, err := Parse(good); err != nil {
		t.Fatal(err)
	}
	for name, b := range cases {
		if r, err := Parse(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, %v; want ErrMalformed", name, r, err)
		}
	}
}
