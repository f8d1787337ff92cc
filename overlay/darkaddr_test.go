package overlay

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/specialname"
	"github.com/darkmatter/darkmatter/internal/streamerr"
)

// Dial refuses a mistyped .dark address before any circuit or link exists,
// with ErrBadAddress matching the crypto/keys error of the failed check
// (spec/streams.md §7); a valid one is a hidden service, which a node that
// has not started cannot look up (ErrNoDHT), and nothing is sent either.
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
		{valid + ":80", []error{ErrNoDHT}},
		{"WWW." + strings.ToUpper(valid) + ".:443", []error{ErrNoDHT}},
		{label[1:] + ".dark:80", []error{ErrNoDHT}}, // 55 bytes: a name, resolved through the DHT
		{"a_b.dark:80", []error{ErrBadAddress, specialname.ErrBadName, streamerr.New(streamerr.BadAddress)}},
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
		if errors.Is(err, ErrBadAddress) == errors.Is(err, ErrNoDHT) && strings.Contains(tt.target, ".dark") {
			t.Errorf("Dial(%s) = %v: not exactly one of ErrBadAddress and ErrNoDHT", tt.target, err)
		}
	}
	if n.Links() != 0 || n.ClientCircuits() != 0 || n.CircuitEnds() != 0 {
		t.Fatalf("links %d, circuits %d, ends %d after refused dials", n.Links(), n.ClientCircuits(), n.CircuitEnds())
	}
}
