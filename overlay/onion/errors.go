package onion

import (
	"errors"

	"github.com/darkmatter/darkmatter/internal/hserr"
)

// Errors of Client.Dial, one per reason a hidden service cannot be reached
// (internal/hserr); the proxies answer them with Tor's extended SOCKS5
// replies (0xF0–0xF7).
var (
	// ErrDescriptorNotFound: no descriptor under the service's blinded
	// keys (it is not published, or not yet).
	ErrDescriptorNotFound error = hserr.DescriptorNotFound
	// ErrDescriptorInvalid: a descriptor was found but does not decrypt
	// or parse for this address.
	ErrDescriptorInvalid error = hserr.DescriptorInvalid
	// ErrIntroFailed: every introduction point refused or failed.
	ErrIntroFailed error = hserr.IntroFailed
	// ErrRendezvousFailed: the service did not meet us at the rendezvous
	// relay.
	ErrRendezvousFailed error = hserr.RendezvousFailed
	// ErrClientAuthMissing: the service demands client authorisation and
	// no client key is configured.
	ErrClientAuthMissing error = hserr.ClientAuthMissing
	// ErrClientAuthWrong: the service demands client authorisation and
	// none of our client keys is listed.
	ErrClientAuthWrong error = hserr.ClientAuthWrong
	// ErrIntroTimeout: the introduction was accepted but the service
	// never came to the rendezvous in time.
	ErrIntroTimeout error = hserr.IntroTimeout
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("onion: closed")
)
