package names

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

func TestPetnames(t *testing.T) {
	a1, a2 := service(1).Address(), service(2).Address()
	file := "# my names\n\nAlice.dark " + strings.ToUpper(a1) + "   # a friend\n\tblog.bob\t" + strings.TrimSuffix(a2, ".dark") + "\r\n"
	path := filepath.Join(t.TempDir(), "petnames")
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := LoadPetnames(path)
	if err != nil {
		t.Fatal(err)
	}
	if p.Len() != 2 {
		t.Fatalf("%d petnames", p.Len())
	}
	for name, want := range map[string]string{"alice": a1, "ALICE.dark.": a1, "blog.bob": a2} {
		if got, ok := p.Lookup(name); !ok || got != want {
			t.Errorf("Lookup(%q) = %q, %v", name, got, ok)
		}
	}
	for _, name := range []string{"bob", "carol", "-"} {
		if _, ok := p.Lookup(name); ok {
			t.Errorf("Lookup(%q) found", name)
		}
	}
	var none *Petnames
	if _, ok := none.Lookup("alice"); ok || none.Len() != 0 {
		t.Error("nil Petnames")
	}
	if _, err := LoadPetnames(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing file loaded")
	}
}

func TestPetnamesRefuses(t *testing.T) {
	a := service(1).Address()
	var badKey [32]byte
	cases := map[string]string{
		"one field":       "alice\n",
		"three fields":    "alice " + a + " x\n",
		"bad name":        "a..b " + a + "\n",
		"address as name": a + " " + a + "\n",
		"bad address":     "alice " + a[:20] + "\n",
		"invalid key":     "alice " + keys.ServicePublicKey(badKey).Address() + "\n",
		"duplicate":       "alice " + a + "\nALICE " + a + "\n",
		"long line":       "alice " + a + " #" + strings.Repeat("x", 2000) + "\n",
		"oversize":        strings.Repeat("#\n", MaxPetnamesSize/2+1),
	}
	for name, file := range cases {
		if _, err := ParsePetnames(strings.NewReader(file)); err == nil {
			t.Errorf("%s: parsed", name)
		} else if strings.Contains(err.Error(), "alice") {
			t.Errorf("%s: error quotes the file: %v", name, err)
		}
	}
	// Errors name the line.
	_, err := ParsePetnames(strings.NewReader("# c\nalice " + a + "\nbad\n"))
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("error %v does not name line 3", err)
	}
	// The entry bound holds, and a file at the bound parses.
	var b strings.Builder
	for i := range MaxPetnames {
		b.WriteString("n" + strings.Repeat("x", i%7) + itoa(i) + " " + a + "\n")
	}
	if p, err := ParsePetnames(strings.NewReader(b.String())); err != nil || p.Len() != MaxPetnames {
		t.Fatalf("file of %d entries: %v", MaxPetnames, err)
	}
	b.WriteString("last " + a + "\n")
	if _, err := ParsePetnames(strings.NewReader(b.String())); err == nil {
		t.Fatal("entry bound not enforced")
	}
	var re errReader
	if _, err := ParsePetnames(re); !errors.Is(err, errRead) {
		t.Fatal(err)
	}
}

var errRead = errors.New("read failed")

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errRead }

func itoa(i int) string {
	s := ""
	for {
		s = string(rune('0'+i%10)) + s
		if i /= 10; i == 0 {
			return s
		}
	}
}
