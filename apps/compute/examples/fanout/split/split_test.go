package split

import (
	"bytes"
	"strings"
	"testing"

	"github.com/darkmatter/darkmatter/apps/compute/examples/wordcount/words"
)

func TestSplitKeepsWords(t *testing.T) {
	for _, in := range []string{"", "one", "a b c d e f g", "  lead and trail  ", strings.Repeat("word ", 101), "longwordwithoutspaces tail"} {
		for n := 1; n <= 5; n++ {
			parts := Split([]byte(in), n)
			if len(parts) > n {
				t.Fatalf("%q/%d: %d parts", in, n, len(parts))
			}
			sum := 0
			for _, p := range parts {
				if len(p) == 0 {
					t.Fatalf("%q/%d: empty part", in, n)
				}
				sum += words.Count(p)
			}
			if !bytes.Equal(bytes.Join(parts, nil), []byte(in)) || sum != words.Count([]byte(in)) {
				t.Fatalf("%q/%d: parts %q", in, n, parts)
			}
		}
	}
}
