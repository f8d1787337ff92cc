package socks

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
)

// Protocol constants (RFC 1928, RFC 1929).
const (
	Version         = 0x05 // SOCKS protocol version
	UserPassVersion = 0x01 // username/password sub-negotiation version

	MethodNoAuth       = 0x00
	MethodUserPass     = 0x02
	MethodNoAcceptable = 0xFF

	CmdConnect      = 0x01
	CmdBind         = 0x02
	CmdUDPAssociate = 0x03

	AtypIPv4   = 0x01
	AtypDomain = 0x03
	AtypIPv6   = 0x04
)

// Reply codes (RFC 1928 section 6).
const (
	ReplySucceeded           = 0x00
	ReplyGeneralFailure      = 0x01
	ReplyNotAllowed          = 0x02
	ReplyNetworkUnreachable  = 0x03
	ReplyHostUnreachable     = 0x04
	ReplyConnectionRefused   = 0x05
	ReplyTTLExpired          = 0x06
	ReplyCommandNotSupported = 0x07
	ReplyAddressNotSupported = 0x08

	// Tor's extended SOCKS5 error codes for onion services (Tor proposal
	// 304, ExtendedErrors), used for .dark addresses.

	// ReplyHSDescNotFound (Tor: "onion service descriptor can not be
	// found") answers a valid .dark address: this client cannot reach
	// hidden services yet.
	ReplyHSDescNotFound = 0xF0
	// ReplyHSBadAddress (Tor: "onion service invalid address") answers a
	// mistyped .dark address: wrong length, not base32, unknown version,
	// bad checksum or not a valid key.
	ReplyHSBadAddress = 0xF6
)

// Errors returned by the codec functions. Errors from the underlying reader
// are wrapped, so errors.Is(err, io.EOF) and similar work.
var (
	// ErrVersion means the first byte was not the expected version (0x05,
	// or 0x01 for username/password). A SOCKS4 client gets this error.
	ErrVersion = errors.New("socks: unsupported protocol version")
	// ErrAddressType means ATYP was not 0x01, 0x03 or 0x04.
	ErrAddressType = errors.New("socks: unsupported address type")
	// ErrBadDomain means a domain name was empty or held characters that
	// are not allowed in a host name.
	ErrBadDomain = errors.New("socks: malformed domain name")
)

// Request is a parsed SOCKS5 request.
type Request struct {
	Cmd byte // CmdConnect, CmdBind, CmdUDPAssociate or any other value read
	// Host is an IPv4 address in dotted form, an IPv6 address in RFC 5952
	// form (no brackets, no zone), or a domain name exactly as the client
	// sent it.
	Host string
	Port uint16
}

// Target returns the request's destination as "host:port", with an IPv6
// host in brackets (net.JoinHostPort).
func (r Request) Target() string {
	return net.JoinHostPort(r.Host, strconv.Itoa(int(r.Port)))
}

// ReadGreeting reads the client's greeting and returns the methods it offers.
func ReadGreeting(r io.Reader) (methods []byte, err error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("socks: read greeting: %w", err)
	}
	if hdr[0] != Version {
		return nil, fmt.Errorf("%w 0x%02x in greeting", ErrVersion, hdr[0])
	}
	methods = make([]byte, hdr[1])
	if _, err := io.ReadFull(r, methods); err != nil {
		return nil, fmt.Errorf("socks: read greeting methods: %w", err)
	}
	return methods, nil
}

// ReadUserPass reads an RFC 1929 username/password request. Empty names and
// passwords are accepted.
func ReadUserPass(r io.Reader) (user, pass string, err error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return "", "", fmt.Errorf("socks: read username/password: %w", err)
	}
	if hdr[0] != UserPassVersion {
		return "", "", fmt.Errorf("%w 0x%02x in username/password", ErrVersion, hdr[0])
	}
	u, err := readString(r, int(hdr[1]))
	if err != nil {
		return "", "", fmt.Errorf("socks: read username: %w", err)
	}
	var plen [1]byte
	if _, err := io.ReadFull(r, plen[:]); err != nil {
		return "", "", fmt.Errorf("socks: read password length: %w", err)
	}
	p, err := readString(r, int(plen[0]))
	if err != nil {
		return "", "", fmt.Errorf("socks: read password: %w", err)
	}
	return u, p, nil
}

func readString(r io.Reader, n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", err
	}
	return string(b), nil
}

// ReadRequest reads a SOCKS5 request. Any CMD value is returned as read; the
// caller decides which it supports. The RSV byte is ignored. A domain name
// that is an IP address literal (without zone) is returned as that address
// in canonical form.
func ReadRequest(r io.Reader) (Request, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return Request{}, fmt.Errorf("socks: read request: %w", err)
	}
	if hdr[0] != Version {
		return Request{}, fmt.Errorf("%w 0x%02x in request", ErrVersion, hdr[0])
	}
	req := Request{Cmd: hdr[1]}
	switch hdr[3] {
	case AtypIPv4:
		var a [4]byte
		if _, err := io.ReadFull(r, a[:]); err != nil {
			return Request{}, fmt.Errorf("socks: read IPv4 address: %w", err)
		}
		req.Host = netip.AddrFrom4(a).String()
	case AtypIPv6:
		var a [16]byte
		if _, err := io.ReadFull(r, a[:]); err != nil {
			return Request{}, fmt.Errorf("socks: read IPv6 address: %w", err)
		}
		req.Host = netip.AddrFrom16(a).String()
	case AtypDomain:
		var n [1]byte
		if _, err := io.ReadFull(r, n[:]); err != nil {
			return Request{}, fmt.Errorf("socks: read domain length: %w", err)
		}
		name, err := readString(r, int(n[0]))
		if err != nil {
			return Request{}, fmt.Errorf("socks: read domain name: %w", err)
		}
		host, ok := checkHost(name)
		if !ok {
			return Request{}, ErrBadDomain
		}
		req.Host = host
	default:
		return Request{}, fmt.Errorf("%w 0x%02x", ErrAddressType, hdr[3])
	}
	var port [2]byte
	if _, err := io.ReadFull(r, port[:]); err != nil {
		return Request{}, fmt.Errorf("socks: read port: %w", err)
	}
	req.Port = uint16(port[0])<<8 | uint16(port[1])
	return req, nil
}

// checkHost returns name as a host for the Dialer: an IP literal in
// canonical form, or name itself when it is a plausible domain name.
func checkHost(name string) (string, bool) {
	if a, err := netip.ParseAddr(name); err == nil {
		if a.Zone() != "" {
			return "", false
		}
		return a.String(), true
	}
	if name == "" || len(name) > 255 {
		return "", false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_':
		default:
			return "", false
		}
	}
	return name, true
}

// WriteReply writes a SOCKS5 reply with the given REP code. BND.ADDR and
// BND.PORT are always 0.0.0.0:0.
func WriteReply(w io.Writer, code byte) error {
	b := [10]byte{Version, code, 0x00, AtypIPv4}
	if _, err := w.Write(b[:]); err != nil {
		return fmt.Errorf("socks: write reply: %w", err)
	}
	return nil
}
