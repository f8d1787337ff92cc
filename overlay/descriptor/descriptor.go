package descriptor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/darkmatter/darkmatter/circuit/exitpolicy"
	"github.com/darkmatter/darkmatter/circuit/protover"
	"github.com/darkmatter/darkmatter/crypto/keys"
)

// Specification constants (spec/descriptor.md).
const (
	// Version is the descriptor format version this package writes and
	// reads. Version 1 was never deployed and is refused.
	Version = 2
	// Magic starts every descriptor.
	Magic = "DMRD"
	// SignatureContext is prepended to the signed bytes so a descriptor
	// signature can never be valid for another kind of message.
	SignatureContext = "darkmatter relay descriptor v2\x00"
	// MaxSize bounds the encoded descriptor in bytes.
	MaxSize = 4000

	MaxNetworkLen    = 64   // bytes of the network name
	MaxAddrs         = 8    // link addresses
	MaxAddrLen       = 255  // bytes of one "scheme://host:port" address
	MaxExitPolicyLen = 1024 // bytes of the exit policy string
	MaxExtensions    = 64   // entries in the extension area
	// MaxUnixTime is 9999-12-31T23:59:59Z, the latest encodable time.
	MaxUnixTime = 253402300799
)

// Freshness constants used by CheckTime and Expired.
const (
	// MaxAge is how long after publication a descriptor is accepted.
	MaxAge = 24 * time.Hour
	// MaxClockSkew is how far in the future a publication time may lie.
	MaxClockSkew = time.Hour
)

const (
	fixedHead = len(Magic) + 1 + 2                                                  // magic, version, network length
	fixedKeys = keys.PublicKeySize + 32 + 32 + 8 + keys.KEMPublicKeySize            // identity, link, onion, expiry, KEM
	fixedTail = 1 + 2 + 4 + 1 + 1 + 8 + keys.SignatureSize                          // addr count, policy length, bandwidth, protocol count, extension count, published, signature
	minSize   = fixedHead + 1 + fixedKeys + fixedTail + len("reject *:*")           // smallest valid descriptor
	_         = uint(MaxSize - (fixedHead + MaxNetworkLen + fixedKeys + fixedTail)) // the fixed part fits
)

// Descriptor is a relay's signed description of itself. Build one, call
// Sign, then Marshal; receivers get one from Parse.
type Descriptor struct {
	Network      string                 // network name, 1..64 bytes
	Identity     keys.IdentityPublicKey // set by Sign
	Link         keys.LinkPublicKey     // Noise static key of the relay's links
	Onion        keys.OnionPublicKey    // circuit handshake key
	OnionExpires time.Time              // onion key expiry, whole unix seconds on the wire
	KEM          keys.KEMPublicKey      // ML-KEM-768 key of the hybrid circuit handshake
	// Addrs are the link addresses, "scheme://host:port" (see SplitAddr),
	// at most 8, each at most 255 bytes, in the relay's order of
	// preference. Sign turns a bare "host:port" into "tcp://host:port".
	Addrs      []string
	ExitPolicy string       // canonical exitpolicy string, at most 1024 bytes ("reject *:*" for a non-exit)
	Bandwidth  uint32       // advertised bytes per second
	Protocols  protover.Set // subprotocol versions the relay speaks (spec/protover.md)
	Published  time.Time    // publication time, whole unix seconds on the wire
	Signature  [64]byte     // set by Sign

	// extensions are the extension entries, in strictly ascending type
	// order. Version 2 defines no type, so Parse keeps every entry here,
	// unread, and Marshal writes them back byte for byte: they are
	// covered by the signature.
	extensions []extension

	// policy caches the parsed ExitPolicy; set by Parse. Policy uses it
	// only while ExitPolicy still equals policyFor.
	policy    *exitpolicy.Policy
	policyFor string
}

// extension is one entry of the extension area: a type and an opaque
// value of at most 65535 bytes.
type extension struct {
	typ   uint16
	value []byte
}

// ErrSignature is returned by Parse for a descriptor whose signature does
// not verify.
var ErrSignature = errors.New("descriptor: bad signature")

// Sign sets d.Identity to k's public key and d.Signature to k's signature
// of the descriptor. It first rewrites each bare "host:port" in d.Addrs as
// "tcp://host:port" (into a new slice, so the caller's is not changed);
// other addresses, valid or not, are left for Validate and Parse to judge.
func (d *Descriptor) Sign(k *keys.IdentityPrivateKey) {
	d.normalizeAddrs()
	d.Identity = k.Public()
	body := d.marshalBody()
	d.Signature = k.Sign(signedMessage(body))
}

// normalizeAddrs gives every address without a scheme the tcp scheme.
func (d *Descriptor) normalizeAddrs() {
	var out []string
	for i, a := range d.Addrs {
		if strings.Contains(a, schemeSep) {
			continue
		}
		if out == nil {
			out = slices.Clone(d.Addrs)
		}
		out[i] = JoinAddr(SchemeTCP, a)
	}
	if out != nil {
		d.Addrs = out
	}
}

func signedMessage(body []byte) []byte {
	msg := make([]byte, 0, len(SignatureContext)+len(body))
	return append(append(msg, SignatureContext...), body...)
}

// Marshal returns the descriptor in the wire layout. It does not check the
// limits (Validate does): a descriptor that breaks one marshals to bytes
// that Parse refuses.
func (d *Descriptor) Marshal() []byte {
	return append(d.marshalBody(), d.Signature[:]...)
}

// marshalBody returns every byte before the signature, with room for it.
func (d *Descriptor) marshalBody() []byte {
	b := make([]byte, 0, d.bodySize()+keys.SignatureSize)
	b = append(b, Magic...)
	b = append(b, Version)
	b = appendString(b, d.Network)
	b = append(b, d.Identity[:]...)
	b = append(b, d.Link[:]...)
	b = append(b, d.Onion[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(d.OnionExpires.Unix()))
	b = append(b, d.KEM[:]...)
	b = append(b, byte(min(len(d.Addrs), 255)))
	for _, a := range d.Addrs[:min(len(d.Addrs), 255)] {
		b = appendString(b, a)
	}
	b = appendString(b, d.ExitPolicy)
	b = binary.BigEndian.AppendUint32(b, d.Bandwidth)
	b = d.Protocols.Append(b)
	b = append(b, byte(min(len(d.extensions), 255)))
	for _, e := range d.extensions[:min(len(d.extensions), 255)] {
		b = binary.BigEndian.AppendUint16(b, e.typ)
		b = appendBytes(b, e.value)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(d.Published.Unix()))
	return b
}

func (d *Descriptor) bodySize() int {
	n := fixedHead + len(d.Network) + fixedKeys + fixedTail - keys.SignatureSize + len(d.ExitPolicy)
	for _, a := range d.Addrs {
		n += 2 + len(a)
	}
	n += d.Protocols.Len() - 1 // the count byte is in fixedTail
	for _, e := range d.extensions {
		n += 4 + len(e.value)
	}
	return n
}

// appendString appends a 2-byte length and s, cut to 65535 bytes (far
// beyond every limit, so Parse refuses the result).
func appendString(b []byte, s string) []byte {
	if len(s) > 0xffff {
		s = s[:0xffff]
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// appendBytes is appendString for a byte slice.
func appendBytes(b, v []byte) []byte {
	if len(v) > 0xffff {
		v = v[:0xffff]
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
	return append(b, v...)
}

// Validate checks every limit Parse checks, except the signature.
func (d *Descriptor) Validate() error {
	if n := d.bodySize() + keys.SignatureSize; n > MaxSize {
		return fmt.Errorf("descriptor: %d bytes, more than %d", n, MaxSize)
	}
	if err := checkNetwork(d.Network); err != nil {
		return err
	}
	if err := checkTime("onion key expiry", d.OnionExpires.Unix()); err != nil {
		return err
	}
	if err := checkTime("publication time", d.Published.Unix()); err != nil {
		return err
	}
	if d.OnionExpires.Unix() <= d.Published.Unix() {
		return fmt.Errorf("descriptor: onion key expires (%s) before it is published (%s)", d.OnionExpires.UTC().Format(time.RFC3339), d.Published.UTC().Format(time.RFC3339))
	}
	if err := d.KEM.Validate(); err != nil {
		return fmt.Errorf("descriptor: %w", err)
	}
	if len(d.Addrs) > MaxAddrs {
		return fmt.Errorf("descriptor: %d addresses, at most %d", len(d.Addrs), MaxAddrs)
	}
	for i, a := range d.Addrs {
		if _, _, err := splitAddr(a); err != nil {
			return fmt.Errorf("descriptor: address %d: %w", i, err)
		}
		for _, prev := range d.Addrs[:i] {
			if prev == a {
				return fmt.Errorf("descriptor: address %q listed twice", a)
			}
		}
	}
	if n := (d.Protocols.Len() - 1) / 5; n > protover.MaxEntries {
		return fmt.Errorf("descriptor: %d protocols, at most %d", n, protover.MaxEntries)
	}
	if err := checkExtensions(d.extensions); err != nil {
		return err
	}
	_, err := parsePolicy(d.ExitPolicy)
	return err
}

// checkExtensions checks the extension area: at most MaxExtensions
// entries, types strictly ascending (so no type appears twice and every
// area has one encoding). The size of each value is bounded by MaxSize,
// which Validate checks first.
func checkExtensions(es []extension) error {
	if len(es) > MaxExtensions {
		return fmt.Errorf("descriptor: %d extensions, at most %d", len(es), MaxExtensions)
	}
	for i, e := range es {
		if i > 0 && e.typ <= es[i-1].typ {
			if e.typ == es[i-1].typ {
				return fmt.Errorf("descriptor: extension type %d appears twice", e.typ)
			}
			return fmt.Errorf("descriptor: extension type %d follows type %d (types must ascend)", e.typ, es[i-1].typ)
		}
	}
	return nil
}

func parsePolicy(s string) (*exitpolicy.Policy, error) {
	if len(s) > MaxExitPolicyLen {
		return nil, fmt.Errorf("descriptor: exit policy is %d bytes, at most %d", len(s), MaxExitPolicyLen)
	}
	p, err := exitpolicy.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("descriptor: %w", err)
	}
	if c := p.String(); c != s {
		return nil, fmt.Errorf("descriptor: exit policy %q is not in canonical form %q", s, c)
	}
	return p, nil
}

func checkNetwork(s string) error {
	if len(s) == 0 || len(s) > MaxNetworkLen {
		return fmt.Errorf("descriptor: network name is %d bytes, want 1..%d", len(s), MaxNetworkLen)
	}
	if !utf8.ValidString(s) {
		return errors.New("descriptor: network name is not UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("descriptor: network name %q has a control character", s)
		}
	}
	return nil
}

func checkTime(what string, sec int64) error {
	if sec < 1 || sec > MaxUnixTime {
		return fmt.Errorf("descriptor: %s %d is out of range 1..%d", what, sec, MaxUnixTime)
	}
	return nil
}

// reader consumes a byte slice; the first short read sets err.
type reader struct {
	b   []byte
	err error
}

func (r *reader) next(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.err = fmt.Errorf("descriptor: truncated in %s", what)
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8(what string) int {
	if v := r.next(1, what); v != nil {
		return int(v[0])
	}
	return 0
}

func (r *reader) u16(what string) int {
	if v := r.next(2, what); v != nil {
		return int(binary.BigEndian.Uint16(v))
	}
	return 0
}

func (r *reader) u64(what string) uint64 {
	if v := r.next(8, what); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// str reads a 2-byte length and that many bytes, refusing lengths above max
// before reading them.
func (r *reader) str(what string, max int) string {
	n := r.u16(what + " length")
	if r.err == nil && n > max {
		r.err = fmt.Errorf("descriptor: %s is %d bytes, at most %d", what, n, max)
		return ""
	}
	return string(r.next(n, what))
}

// bytes reads a 2-byte length and that many bytes, like str.
func (r *reader) bytes(what string, max int) []byte {
	n := r.u16(what + " length")
	if r.err == nil && n > max {
		r.err = fmt.Errorf("descriptor: %s is %d bytes, at most %d", what, n, max)
		return nil
	}
	return r.next(n, what)
}

// Parse decodes and checks a descriptor, including its signature. It
// accepts exactly the bytes Marshal produces for a valid, signed
// descriptor.
func Parse(b []byte) (*Descriptor, error) {
	d, err := decode(b)
	if err != nil {
		return nil, err
	}
	body := b[:len(b)-keys.SignatureSize]
	if !d.Identity.Verify(signedMessage(body), d.Signature[:]) {
		return nil, ErrSignature
	}
	return d, nil
}

// decode does all of Parse's work except checking the signature.
func decode(b []byte) (*Descriptor, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("descriptor: %d bytes, more than %d", len(b), MaxSize)
	}
	if len(b) < minSize {
		return nil, fmt.Errorf("descriptor: %d bytes, too short (at least %d)", len(b), minSize)
	}
	r := &reader{b: b}
	if magic := r.next(len(Magic), "magic"); !bytes.Equal(magic, []byte(Magic)) {
		return nil, fmt.Errorf("descriptor: bad magic %q, want %q", magic, Magic)
	}
	if v := r.u8("version"); v != Version {
		return nil, fmt.Errorf("descriptor: unsupported version %d (this software reads version %d)", v, Version)
	}
	d := &Descriptor{}
	d.Network = r.str("network name", MaxNetworkLen)
	copy(d.Identity[:], r.next(len(d.Identity), "identity key"))
	copy(d.Link[:], r.next(len(d.Link), "link key"))
	copy(d.Onion[:], r.next(len(d.Onion), "onion key"))
	onionExpires := int64(r.u64("onion key expiry"))
	copy(d.KEM[:], r.next(len(d.KEM), "KEM key"))
	n := r.u8("address count")
	if r.err == nil && n > MaxAddrs {
		return nil, fmt.Errorf("descriptor: %d addresses, at most %d", n, MaxAddrs)
	}
	for i := range n {
		a := r.str(fmt.Sprintf("address %d", i), MaxAddrLen)
		if r.err != nil {
			break
		}
		d.Addrs = append(d.Addrs, a)
	}
	d.ExitPolicy = r.str("exit policy", MaxExitPolicyLen)
	if v := r.next(4, "bandwidth"); v != nil {
		d.Bandwidth = binary.BigEndian.Uint32(v)
	}
	if r.err == nil {
		set, used, err := protover.Parse(r.b)
		if err != nil {
			return nil, fmt.Errorf("descriptor: protocols: %w", err)
		}
		d.Protocols = set
		r.b = r.b[used:]
	}
	n = r.u8("extension count")
	for i := range n {
		typ := r.u16("extension type")
		v := r.bytes(fmt.Sprintf("extension %d", i), 0xffff)
		if r.err != nil {
			break
		}
		e := extension{typ: uint16(typ)}
		if len(v) > 0 {
			e.value = bytes.Clone(v)
		}
		d.extensions = append(d.extensions, e)
	}
	published := int64(r.u64("publication time"))
	sig := r.next(keys.SignatureSize, "signature")
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("descriptor: %d trailing bytes after the signature", len(r.b))
	}
	copy(d.Signature[:], sig)
	// Range-check before converting, so out-of-range values never become
	// times that marshal differently.
	if err := checkTime("onion key expiry", onionExpires); err != nil {
		return nil, err
	}
	if err := checkTime("publication time", published); err != nil {
		return nil, err
	}
	d.OnionExpires = time.Unix(onionExpires, 0).UTC()
	d.Published = time.Unix(published, 0).UTC()
	if err := d.Validate(); err != nil {
		return nil, err
	}
	d.policy, _ = parsePolicy(d.ExitPolicy) // Validate has checked it
	d.policyFor = d.ExitPolicy
	return d, nil
}

// NodeID returns SHA-256 of the identity key.
func (d *Descriptor) NodeID() keys.NodeID { return d.Identity.NodeID() }

// Policy returns the parsed exit policy, or a policy rejecting everything if
// ExitPolicy does not parse (Parse refuses such descriptors).
func (d *Descriptor) Policy() *exitpolicy.Policy {
	if d.policy != nil && d.policyFor == d.ExitPolicy {
		return d.policy
	}
	p, err := exitpolicy.Parse(d.ExitPolicy)
	if err != nil {
		return exitpolicy.RejectAll()
	}
	return p
}

// Bootstrap returns the bootstrap string fields for the descriptor: its
// identity and link keys and its first address, "scheme://host:port" (""
// if it has none).
func (d *Descriptor) Bootstrap() Bootstrap {
	b := Bootstrap{Identity: d.Identity, Link: d.Link}
	if len(d.Addrs) > 0 {
		b.Addr = d.Addrs[0]
	}
	return b
}

// Addr returns the "host:port" of the first address with the given scheme,
// and whether there is one.
func (d *Descriptor) Addr(scheme string) (hostport string, ok bool) {
	for _, a := range d.Addrs {
		if s, hp, found := strings.Cut(a, schemeSep); found && s == scheme {
			return hp, true
		}
	}
	return "", false
}

// Freshness errors returned by CheckTime.
var (
	ErrTooOld        = errors.New("descriptor: published more than 24h ago")
	ErrOnionExpired  = errors.New("descriptor: onion key has expired")
	ErrFromTheFuture = errors.New("descriptor: published in the future")
)

// CheckTime reports whether the descriptor is usable at now: published at
// most MaxAge ago and at most MaxClockSkew ahead, with an onion key that has
// not expired.
func (d *Descriptor) CheckTime(now time.Time) error {
	switch {
	case d.Published.Sub(now) > MaxClockSkew:
		return fmt.Errorf("%w (%s, now %s)", ErrFromTheFuture, d.Published.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case now.Sub(d.Published) > MaxAge:
		return fmt.Errorf("%w (%s)", ErrTooOld, d.Published.UTC().Format(time.RFC3339))
	case !now.Before(d.OnionExpires):
		return fmt.Errorf("%w (%s)", ErrOnionExpired, d.OnionExpires.UTC().Format(time.RFC3339))
	}
	return nil
}

// Expired reports whether the descriptor is too old or its onion key has
// expired at now. (A descriptor from the future is not expired; CheckTime
// refuses it.)
func (d *Descriptor) Expired(now time.Time) bool {
	return now.Sub(d.Published) > MaxAge || !now.Before(d.OnionExpires)
}
