package overlay

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/streamerr"
)

// Dial refuses a .dark address before any circuit or link exists: a
// mistyped one with ErrBadAddress (matching the crypto/keys error of the
// failed check), a valid one with ErrNotAvailable (spec/streams.md §7).
func TestDialDarkAddress(t *testing.T) {
	n, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx := context.Background()
	valid := keys.ServiceFromSeed([32]byte{4}).Public().Address()
	label := strings.TrimSuffix(valid, ".dark")
	for _, tt := range []struct {
		target string
		want   []error
	}{
		{valid + ":80", []error{ErrNotAvailable, streamerr.New(streamerr.Unreachable)}},
		{"WWW." + strings.ToUpper(valid) + ".:443", []error{ErrNotAvailable}},
		{label[1:] + ".dark:80", []error{ErrBadAddress, keys.ErrAddressLength, streamerr.New(streamerr.BadAddress)}},
		{label[:10] + "1" + label[11:] + ".dark:80", []error{ErrBadAddress, keys.ErrAddressEncoding}},
		{label[:55] + "c.dark:80", []error{ErrBadAddress, keys.ErrAddressVersion}},
		{"x.onion:80", []error{streamerr.New(streamerr.Unreachable)}},
	} {
		_, err := n.Dial(ctx, "tcp", tt.target)
		for _, w := range tt.want {
			if !errors.Is(err, w) {
				t.Errorf("Dial(%s) = %v, want it to match %v", tt.target, err, w)
			}
		}
		if errors.Is(err, ErrBadAddress) == errors.Is(err, ErrNotAvailable) && strings.Contains(tt.target, ".dark") {
			t.Errorf("Dial(%s) = %v: not exactly one of ErrBadAddress and ErrNotAvailable", tt.target, err)
		}
	}
	if n.Links() != 0 || n.ClientCircuits() != 0 || n.CircuitEnds() != 0 {
		t.Fatalf("links %d, circuits %d, ends %d after refused dials", n.Links(), n.ClientCircuits(), n.CircuitEnds())
	}
}
