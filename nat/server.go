package nat

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/stun/v3"

	"github.com/darkmatter/darkmatter/internal/ratelimit"
)

// Server tuning defaults (spec/nat.md §2).
const (
	DefaultServerRate       = 20    // answers per second per source IP
	DefaultServerBurst      = 40    // answers at once per source IP
	DefaultServerMaxSources = 10000 // source IPs tracked at once

	// MaxAnswerFactor bounds an answer to this many times the size of the
	// request it answers, so a spoofed request cannot be amplified more.
	MaxAnswerFactor = 3

	maxDatagram = 1500
)

// ServerConfig configures a [Server]. The zero value answers Binding
// requests on one socket with the default limits and refuses CHANGE-REQUEST.
//
// For RFC 5780 behaviour discovery give the three alternate sockets: with
// P the primary socket's address A1:P1, AltPort is A1:P2, AltIP is A2:P1
// and AltIPPort is A2:P2, where A2 is another IP of the same machine. A
// CHANGE-REQUEST is honoured when the socket it asks for is configured and
// answered with 420 (Unknown Attribute) otherwise; answers carry
// OTHER-ADDRESS when the socket differing in both IP and port is
// configured. Serve owns the alternate sockets: it reads requests on them
// too, and closes them when it returns.
type ServerConfig struct {
	AltPort   net.PacketConn
	AltIP     net.PacketConn
	AltIPPort net.PacketConn

	// Rate and Burst bound the answers per source IP (token bucket); 0
	// means the defaults. MaxSources bounds the sources tracked; a request
	// from a new source when the table is full of active ones is dropped.
	Rate       float64
	Burst      int
	MaxSources int

	// Now is the clock of the rate limiter; nil means time.Now.
	Now func() time.Time
}

// Server answers STUN Binding requests. It never sends SOFTWARE or
// FINGERPRINT, never answers what is not a well-formed Binding request,
// and bounds answers per source and in size (spec/nat.md §2).
type Server struct {
	cfg ServerConfig

	mu        sync.Mutex // guards the following
	sources   map[netip.Addr]*ratelimit.Bucket
	lastSweep time.Time
	dropped   uint64 // requests refused by a limit
}

// NewServer returns a server; call Serve to run it.
func NewServer(cfg ServerConfig) *Server {
	if cfg.Rate <= 0 {
		cfg.Rate = DefaultServerRate
	}
	if cfg.Burst <= 0 {
		cfg.Burst = DefaultServerBurst
	}
	if cfg.MaxSources <= 0 {
		cfg.MaxSources = DefaultServerMaxSources
	}
	return &Server{cfg: cfg, sources: make(map[netip.Addr]*ratelimit.Bucket)}
}

// Dropped reports how many requests a rate or table limit refused.
func (s *Server) Dropped() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// socket roles: bit 0 is the alternate port, bit 1 the alternate IP.
const (
	rolePrimary   = 0
	roleAltPort   = 1
	roleAltIP     = 2
	roleAltIPPort = 3
)

// Serve answers requests read from pc (and from the alternate sockets of
// the config) until pc is closed, then closes the alternate sockets and
// returns nil. It returns an error for an inconsistent configuration or a
// read error on pc other than its closing.
func (s *Server) Serve(pc net.PacketConn) error {
	socks := [4]net.PacketConn{pc, s.cfg.AltPort, s.cfg.AltIP, s.cfg.AltIPPort}
	var addrs [4]netip.AddrPort
	for i, c := range socks {
		if c == nil {
			continue
		}
		ap, ok := AddrPortOf(c.LocalAddr())
		if !ok {
			return fmt.Errorf("%w: socket %d has no UDP address", ErrBadConfig, i)
		}
		addrs[i] = ap
	}
	if err := checkRoles(socks, addrs); err != nil {
		return err
	}
	var wg sync.WaitGroup
	for i := 1; i < 4; i++ {
		if socks[i] != nil {
			wg.Go(func() { _ = s.serveOne(socks, addrs, i) })
		}
	}
	err := s.serveOne(socks, addrs, rolePrimary)
	for i := 1; i < 4; i++ {
		if socks[i] != nil {
			_ = socks[i].Close()
		}
	}
	wg.Wait()
	return err
}

func checkRoles(socks [4]net.PacketConn, a [4]netip.AddrPort) error {
	bad := func(what string) error { return fmt.Errorf("%w: %s", ErrBadConfig, what) }
	if socks[roleAltPort] != nil && (a[roleAltPort].Addr() != a[0].Addr() || a[roleAltPort].Port() == a[0].Port()) {
		return bad("AltPort must share the primary IP on another port")
	}
	if socks[roleAltIP] != nil && a[roleAltIP].Addr() == a[0].Addr() {
		return bad("AltIP must have another IP")
	}
	if socks[roleAltIPPort] != nil {
		if a[roleAltIPPort].Addr() == a[0].Addr() || a[roleAltIPPort].Port() == a[0].Port() {
			return bad("AltIPPort must differ from the primary in IP and port")
		}
		if socks[roleAltIP] != nil && a[roleAltIPPort].Addr() != a[roleAltIP].Addr() {
			return bad("AltIPPort must share AltIP's IP")
		}
	}
	return nil
}

// serveOne reads requests on socks[role] until it fails.
func (s *Server) serveOne(socks [4]net.PacketConn, addrs [4]netip.AddrPort, role int) error {
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := socks[role].ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("nat: stun read: %w", err)
		}
		src, ok := AddrPortOf(from)
		if !ok || src.Port() == 0 || src.Addr().IsUnspecified() {
			continue
		}
		out, via := s.answer(buf[:n], src, addrs, socks, role)
		if out == nil {
			continue
		}
		_, _ = socks[via].WriteTo(out, udpAddr(src))
	}
}

// answer builds the answer to req from src received on socket role, and
// the socket to send it from; nil when there is none.
func (s *Server) answer(req []byte, src netip.AddrPort, addrs [4]netip.AddrPort, socks [4]net.PacketConn, role int) ([]byte, int) {
	m, ok := decodeSTUN(req)
	if !ok || m.Type != stun.BindingRequest {
		return nil, 0
	}
	change, _, ok := getChangeRequest(m)
	if !ok {
		return nil, 0
	}
	if !s.allow(src.Addr()) {
		return nil, 0
	}
	budget := MaxAnswerFactor * len(req)
	var unknown stun.UnknownAttributes
	for _, a := range m.Attributes {
		if a.Type >= 0x8000 || a.Type == stun.AttrPadding || a.Type == stun.AttrChangeRequest {
			continue
		}
		unknown = append(unknown, a.Type)
	}
	via := role
	if change.ip {
		via ^= roleAltIP
	}
	if change.port {
		via ^= roleAltPort
	}
	if via != role && socks[via] == nil {
		unknown = append(unknown, stun.AttrChangeRequest)
	}
	if len(unknown) > 0 {
		return errorAnswer(m.TransactionID, unknown, budget), role
	}
	resp := new(stun.Message)
	resp.TransactionID = m.TransactionID
	resp.Type = stun.BindingSuccess
	resp.WriteHeader()
	ip, port := src.Addr().AsSlice(), int(src.Port())
	size := stunHeaderSize + ipAttrSize(src.Addr())
	if size > budget {
		return nil, 0
	}
	_ = (stun.XORMappedAddress{IP: ip, Port: port}).AddTo(resp)
	if other := role ^ roleAltIPPort; socks[other] != nil && size+ipAttrSize(addrs[other].Addr()) <= budget {
		size += ipAttrSize(addrs[other].Addr())
		o := stun.OtherAddress{IP: addrs[other].Addr().AsSlice(), Port: int(addrs[other].Port())}
		_ = o.AddTo(resp)
	}
	// RESPONSE-ORIGIN only when the socket has a specific IP (not 0.0.0.0).
	if !addrs[via].Addr().IsUnspecified() && size+ipAttrSize(addrs[via].Addr()) <= budget {
		size += ipAttrSize(addrs[via].Addr())
		o := stun.ResponseOrigin{IP: addrs[via].Addr().AsSlice(), Port: int(addrs[via].Port())}
		_ = o.AddTo(resp)
	}
	if size+ipAttrSize(src.Addr()) <= budget {
		_ = (&stun.MappedAddress{IP: ip, Port: port}).AddTo(resp)
	}
	return resp.Raw, via
}

// errorAnswer is a 420 listing the attributes not understood, within
// budget bytes, or nil.
func errorAnswer(tid [stun.TransactionIDSize]byte, unknown stun.UnknownAttributes, budget int) []byte {
	// header + ERROR-CODE with an empty reason + UNKNOWN-ATTRIBUTES.
	for len(unknown) > 0 && stunHeaderSize+8+4+(2*len(unknown)+3)/4*4 > budget {
		unknown = unknown[:len(unknown)-1]
	}
	if len(unknown) == 0 {
		return nil
	}
	resp := new(stun.Message)
	resp.TransactionID = tid
	resp.Type = stun.BindingError
	resp.WriteHeader()
	_ = (stun.ErrorCodeAttribute{Code: stun.CodeUnknownAttribute}).AddTo(resp)
	_ = unknown.AddTo(resp)
	return resp.Raw
}

// allow takes a token from src's bucket.
func (s *Server) allow(src netip.Addr) bool {
	now := clockNow(s.cfg.Now)
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.sources[src]
	if b == nil {
		if len(s.sources) >= s.cfg.MaxSources {
			s.sweep(now)
		}
		if len(s.sources) >= s.cfg.MaxSources {
			s.dropped++
			return false
		}
		b = new(ratelimit.Bucket)
		s.sources[src] = b
	}
	if !b.Take(now, s.cfg.Rate, s.cfg.Burst) {
		s.dropped++
		return false
	}
	return true
}

// sweep forgets sources whose buckets have refilled (they are as good as
// new), at most once a second. s.mu is held.
func (s *Server) sweep(now time.Time) {
	if now.Sub(s.lastSweep) < time.Second {
		return
	}
	s.lastSweep = now
	refill := time.Duration(float64(s.cfg.Burst) / s.cfg.Rate * float64(time.Second))
	for ip, b := range s.sources {
		if now.Sub(b.Last()) >= refill {
			delete(s.sources, ip)
		}
	}
}

func clockNow(now func() time.Time) time.Time {
	if now != nil {
		return now()
	}
	return time.Now()
}
