package safelog

import (
	"net"
	"net/url"
)

// Scrub returns err with the host names and addresses that network errors
// print removed, while errors.Is and errors.As still see the whole chain.
// Its message is that of the first network error in err's chain (in the
// order errors.As looks), with only what holds no name or address:
//
//	*net.OpError     "dial: connection refused" (the operation and the
//	                 scrubbed cause; no source or destination address)
//	*net.DNSError    "lookup: no such host" (no name, no resolver
//	                 address; the cause only when it is one of the net
//	                 package's fixed texts, else "timeout", "temporary
//	                 failure" or "failed")
//	*net.AddrError   "address: missing port in address" (no address)
//	*net.ParseError  "invalid IP address" (no input)
//	*url.Error       "Get: " and the scrubbed cause (no URL)
//
// The text of the errors that wrap the network error is dropped too, as
// it may quote the address (fmt.Errorf("dial %s: %w", addr, err)). With
// unsafe logging on, or when err holds none of these, Scrub returns err
// unchanged.
func Scrub(err error) error {
	if err == nil || UnsafeLogging() {
		return err
	}
	msg, ok := netText(err)
	if !ok {
		return err
	}
	return &scrubbed{msg: msg, err: err}
}

// netText returns the scrubbed text of the first network error in err's
// chain, depth first like errors.As, and whether there is one.
func netText(err error) (string, bool) {
	switch e := err.(type) {
	case nil:
		return "", false
	case *net.OpError:
		return e.Op + causeText(e.Err), true
	case *net.DNSError:
		return "lookup: " + dnsCause(e), true
	case *net.AddrError:
		return "address: " + e.Err, true
	case *net.ParseError:
		return "invalid " + e.Type, true
	case *url.Error:
		return e.Op + causeText(e.Err), true
	case interface{ Unwrap() error }:
		return netText(e.Unwrap())
	case interface{ Unwrap() []error }:
		for _, inner := range e.Unwrap() {
			if msg, ok := netText(inner); ok {
				return msg, true
			}
		}
	}
	return "", false
}

// causeText returns ": " and the scrubbed text of cause, or "" for none.
// A cause that holds no network error (a syscall error, say) prints
// itself: those hold no address.
func causeText(cause error) string {
	if cause == nil {
		return ""
	}
	if msg, ok := netText(cause); ok {
		return ": " + msg
	}
	return ": " + cause.Error()
}

// dnsFixed are the texts the net package puts in DNSError.Err itself,
// which hold no name or address. Any other text (the resolver copies the
// message of the error it got, which may name the resolver) is replaced
// by what the DNSError's flags say.
var dnsFixed = map[string]bool{
	"no such host":                 true,
	"server misbehaving":           true,
	"i/o timeout":                  true,
	"no answer from DNS server":    true,
	"lame referral":                true,
	"cannot unmarshal DNS message": true,
	"cannot marshal DNS message":   true,
	"invalid DNS response":         true,
	"no suitable address found":    true,
	"operation was canceled":       true,
	"context deadline exceeded":    true,
	"unrecognized address":         true,
	"invalid network interface":    true,
	"DNS response contained records which contain invalid names": true,
}

// dnsCause returns the cause of a DNSError without names or addresses.
func dnsCause(e *net.DNSError) string {
	switch {
	case dnsFixed[e.Err]:
		return e.Err
	case e.IsNotFound:
		return "no such host"
	case e.IsTimeout:
		return "timeout"
	case e.IsTemporary:
		return "temporary failure"
	}
	return "failed"
}

type scrubbed struct {
	msg string
	err error
}

func (s *scrubbed) Error() string { return s.msg }
func (s *scrubbed) Unwrap() error { return s.err }
