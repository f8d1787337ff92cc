package hserr

import (
	"errors"
	"fmt"
	"testing"
)

// Every reason has its own Tor code, is found through wrapping, and only
// the two client-authorisation reasons are "not authorised".
func TestReasons(t *testing.T) {
	all := map[*Error]byte{DescriptorNotFound: 0xF0, DescriptorInvalid: 0xF1, IntroFailed: 0xF2,
		RendezvousFailed: 0xF3, ClientAuthMissing: 0xF4, ClientAuthWrong: 0xF5, IntroTimeout: 0xF7}
	for e, code := range all {
		if e.SOCKS() != code {
			t.Errorf("%v: code %#x, want %#x", e, e.SOCKS(), code)
		}
		w := fmt.Errorf("dial: %w", e)
		if Of(w) != e {
			t.Errorf("Of(%v) = %v", w, Of(w))
		}
		if NotAuthorised(w) != (e == ClientAuthMissing || e == ClientAuthWrong) {
			t.Errorf("NotAuthorised(%v) wrong", e)
		}
	}
	if Of(errors.New("other")) != nil || Of(nil) != nil || NotAuthorised(nil) {
		t.Fatal("an unrelated error has a reason")
	}
}
