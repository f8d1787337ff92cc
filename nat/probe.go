package nat

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/pion/stun/v3"
)

// Probe defaults.
const (
	DefaultProbeTimeout = 3 * time.Second
	DefaultInitialRTO   = 100 * time.Millisecond
	maxRTO              = 800 * time.Millisecond

	// requestPadding is the PADDING a probe adds so that a full IPv6
	// answer (four address attributes, 116 bytes) fits in MaxAnswerFactor
	// times the request (20 + 4 + 16 = 40 bytes).
	requestPadding = 16
)

// Behavior is a NAT mapping or filtering behaviour (RFC 4787).
type Behavior int

// Behaviours. Unknown means the servers probed could not tell.
const (
	Unknown Behavior = iota
	EndpointIndependent
	AddressDependent
	AddressAndPortDependent
)

// String is the CLI's word for b.
func (b Behavior) String() string {
	switch b {
	case Unknown:
		return "unknown"
	case EndpointIndependent:
		return "endpoint-independent"
	case AddressDependent:
		return "address-dependent"
	case AddressAndPortDependent:
		return "address-and-port-dependent"
	}
	return fmt.Sprintf("nat.Behavior(%d)", int(b))
}

// ProbeOptions tunes [Probe]; the zero value uses the defaults.
type ProbeOptions struct {
	// Timeout bounds the whole probe; 0 means DefaultProbeTimeout. Half of
	// it goes to the filtering tests, which wait for answers that a
	// filtering NAT never lets through.
	Timeout time.Duration
	// InitialRTO is the first retransmission timeout of a request, doubled
	// after each retransmission up to 800 ms; 0 means DefaultInitialRTO.
	InitialRTO time.Duration
}

// Report is what a probe learnt.
type Report struct {
	// Local is the probing socket's address.
	Local netip.AddrPort
	// Servers are the servers probed; Mapped[i] is the address Servers[i]
	// saw, the zero AddrPort when it did not answer.
	Servers []netip.AddrPort
	Mapped  []netip.AddrPort
	// Mapping and Filtering classify the NAT (RFC 4787, RFC 5780 §4).
	Mapping   Behavior
	Filtering Behavior
	// Public is true when a server saw the socket's own address: no NAT.
	Public bool
}

// String is the report as the CLI prints it: one line per server, then the
// classification.
func (r *Report) String() string {
	var b strings.Builder
	for i, s := range r.Servers {
		if i < len(r.Mapped) && r.Mapped[i].IsValid() {
			fmt.Fprintf(&b, "server %v: mapped %v\n", s, r.Mapped[i])
		} else {
			fmt.Fprintf(&b, "server %v: no answer\n", s)
		}
	}
	fmt.Fprintf(&b, "mapping: %v\nfiltering: %v\n", r.Mapping, r.Filtering)
	if r.Public {
		b.WriteString("public: yes (no NAT)\n")
	} else {
		b.WriteString("public: no\n")
	}
	return b.String()
}

// test kinds of a transaction.
const (
	testBinding    = iota // RFC 5780 test I
	testChangeBoth        // filtering test II: change IP and port
	testChangePort        // filtering test III: change port
	testMapping           // mapping tests II and III, to the alternate addresses
)

type transaction struct {
	id     [stun.TransactionIDSize]byte
	server int
	kind   int
	dst    netip.AddrPort
	raw    []byte
	next   time.Time
	rto    time.Duration

	done   bool
	code   int            // error code of an error answer, 0 on success
	mapped netip.AddrPort // XOR-MAPPED-ADDRESS (or MAPPED-ADDRESS)
	other  netip.AddrPort // OTHER-ADDRESS, if any
}

func newTransaction(server, kind int, dst netip.AddrPort, change changeRequest) *transaction {
	setters := []stun.Setter{stun.TransactionID, stun.BindingRequest}
	if change.ip || change.port {
		setters = append(setters, change)
	}
	setters = append(setters, padding(requestPadding))
	m := stun.MustBuild(setters...)
	return &transaction{id: m.TransactionID, server: server, kind: kind, dst: dst, raw: m.Raw}
}

// Probe sends STUN Binding requests from pc to servers, learns the
// address each one sees and classifies the NAT in front of pc. During the
// call Probe reads from pc and discards whatever is not an answer; it
// clears pc's read deadline when it returns. It returns the report with an
// error wrapping ErrNoAnswer when no server answered, and ctx's error when
// ctx ends first.
//
// The filtering tests (CHANGE-REQUEST to each server's primary address) run
// before the mapping tests (to each server's OTHER-ADDRESS), so the latter
// cannot open the filter for the former's answers.
func Probe(ctx context.Context, pc net.PacketConn, servers []netip.AddrPort, opts ProbeOptions) (*Report, error) {
	if len(servers) == 0 {
		return nil, ErrNoServers
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultProbeTimeout
	}
	if opts.InitialRTO <= 0 {
		opts.InitialRTO = DefaultInitialRTO
	}
	local, _ := AddrPortOf(pc.LocalAddr())
	r := &Report{Local: local, Mapped: make([]netip.AddrPort, len(servers))}
	for _, s := range servers {
		r.Servers = append(r.Servers, netip.AddrPortFrom(s.Addr().Unmap(), s.Port()))
	}
	start := time.Now()
	end := start.Add(opts.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(end) {
		end = d
	}
	stop := context.AfterFunc(ctx, func() { _ = pc.SetReadDeadline(time.Now()) })
	defer func() {
		stop()
		_ = pc.SetReadDeadline(time.Time{})
	}()

	var phase1 []*transaction
	for i, s := range r.Servers {
		phase1 = append(phase1,
			newTransaction(i, testBinding, s, changeRequest{}),
			newTransaction(i, testChangeBoth, s, changeRequest{ip: true, port: true}),
			newTransaction(i, testChangePort, s, changeRequest{port: true}))
	}
	if err := exchange(ctx, pc, phase1, start.Add(opts.Timeout/2), opts.InitialRTO); err != nil {
		return r, err
	}
	var phase2 []*transaction
	for _, t := range phase1 {
		if t.kind != testBinding || !t.done || t.code != 0 {
			continue
		}
		r.Mapped[t.server] = t.mapped
		if t.other.IsValid() {
			s := r.Servers[t.server]
			phase2 = append(phase2,
				newTransaction(t.server, testMapping, netip.AddrPortFrom(t.other.Addr(), s.Port()), changeRequest{}),
				newTransaction(t.server, testMapping, t.other, changeRequest{}))
		}
	}
	if len(phase2) > 0 {
		if err := exchange(ctx, pc, phase2, end, opts.InitialRTO); err != nil {
			return r, err
		}
	}
	r.Filtering = classifyFiltering(phase1)
	r.Mapping = classifyMapping(append(phase1, phase2...))
	for _, m := range r.Mapped {
		if m.IsValid() && isOwnAddress(m, local) {
			r.Public = true
		}
	}
	for _, m := range r.Mapped {
		if m.IsValid() {
			return r, nil
		}
	}
	return r, fmt.Errorf("%w (%d servers)", ErrNoAnswer, len(servers))
}

// exchange runs the transactions until all are answered or until end.
func exchange(ctx context.Context, pc net.PacketConn, txns []*transaction, end time.Time, rto time.Duration) error {
	buf := make([]byte, maxDatagram)
	for _, t := range txns {
		t.rto = rto
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		now := time.Now()
		if !now.Before(end) {
			return nil
		}
		wake, open := end, false
		for _, t := range txns {
			if t.done {
				continue
			}
			open = true
			if !now.Before(t.next) {
				if _, err := pc.WriteTo(t.raw, udpAddr(t.dst)); err != nil && errors.Is(err, net.ErrClosed) {
					return fmt.Errorf("nat: probe: %w", err)
				}
				t.next = now.Add(t.rto)
				t.rto = min(2*t.rto, maxRTO)
			}
			if t.next.Before(wake) {
				wake = t.next
			}
		}
		if !open {
			return nil
		}
		if err := pc.SetReadDeadline(wake); err != nil {
			return fmt.Errorf("nat: probe: %w", err)
		}
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				if isTimeout(err) {
					break
				}
				return fmt.Errorf("nat: probe: %w", err)
			}
			if settle(buf[:n], txns) && allDone(txns) {
				return nil
			}
		}
	}
}

func allDone(txns []*transaction) bool {
	for _, t := range txns {
		if !t.done {
			return false
		}
	}
	return true
}

// settle records an answer in the transaction it answers, reporting
// whether it settled one.
func settle(b []byte, txns []*transaction) bool {
	m, ok := decodeSTUN(b)
	if !ok || m.Type.Method != stun.MethodBinding {
		return false
	}
	for _, t := range txns {
		if t.done || t.id != m.TransactionID {
			continue
		}
		switch m.Type.Class {
		case stun.ClassErrorResponse:
			var ec stun.ErrorCodeAttribute
			if ec.GetFrom(m) != nil {
				return false
			}
			t.code = int(ec.Code)
		case stun.ClassSuccessResponse:
			var xa stun.XORMappedAddress
			if err := xa.GetFrom(m); err == nil {
				t.mapped = toAddrPort(xa.IP, xa.Port)
			} else {
				var ma stun.MappedAddress
				if ma.GetFrom(m) != nil {
					return false
				}
				t.mapped = toAddrPort(ma.IP, ma.Port)
			}
			if !t.mapped.IsValid() {
				return false
			}
			var oa stun.OtherAddress
			if oa.GetFrom(m) == nil {
				t.other = toAddrPort(oa.IP, oa.Port)
			}
		default:
			return false
		}
		t.done = true
		return true
	}
	return false
}

func toAddrPort(ip net.IP, port int) netip.AddrPort {
	a, ok := netip.AddrFromSlice(ip)
	if !ok || port <= 0 || port > 0xFFFF {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(port))
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// classifyFiltering applies RFC 5780 §4.4 to the first server able to run
// the filtering tests: one that answered test I and refused neither
// CHANGE-REQUEST.
func classifyFiltering(txns []*transaction) Behavior {
	type result struct{ basic, both, port *transaction }
	per := map[int]*result{}
	for _, t := range txns {
		r := per[t.server]
		if r == nil {
			r = new(result)
			per[t.server] = r
		}
		switch t.kind {
		case testBinding:
			r.basic = t
		case testChangeBoth:
			r.both = t
		case testChangePort:
			r.port = t
		}
	}
	best := Unknown
	for _, r := range per {
		if r.basic == nil || !r.basic.done || r.basic.code != 0 || r.both == nil || r.port == nil ||
			r.both.code != 0 || r.port.code != 0 {
			continue
		}
		var b Behavior
		switch {
		case r.both.done:
			b = EndpointIndependent
		case r.port.done:
			b = AddressDependent
		default:
			b = AddressAndPortDependent
		}
		if best == Unknown || b < best {
			best = b
		}
	}
	return best
}

// classifyMapping compares the mapped addresses that answers to different
// destinations reported (RFC 5780 §4.3, generalised to several servers):
// a change with the port alone means address-and-port-dependent; a change
// with the IP alone, while the port alone changes nothing, means
// address-dependent; no change across IPs means endpoint-independent.
// Anything else is Unknown.
func classifyMapping(txns []*transaction) Behavior {
	type obs struct{ dst, mapped netip.AddrPort }
	var seen []obs
	for _, t := range txns {
		if (t.kind == testBinding || t.kind == testMapping) && t.done && t.code == 0 {
			seen = append(seen, obs{t.dst, t.mapped})
		}
	}
	var portSame, portDiff, ipSame, ipDiff bool
	for i := range seen {
		for j := i + 1; j < len(seen); j++ {
			a, b := seen[i], seen[j]
			same := a.mapped == b.mapped
			switch {
			case a.dst == b.dst:
			case a.dst.Addr() == b.dst.Addr():
				portSame = portSame || same
				portDiff = portDiff || !same
			default:
				ipSame = ipSame || same
				ipDiff = ipDiff || !same
			}
		}
	}
	switch {
	case portDiff:
		return AddressAndPortDependent
	case ipDiff && portSame:
		return AddressDependent
	case ipSame && !ipDiff:
		return EndpointIndependent
	}
	return Unknown
}

// isOwnAddress reports whether mapped is the socket's own address.
func isOwnAddress(mapped, local netip.AddrPort) bool {
	if mapped == local {
		return true
	}
	if !local.Addr().IsUnspecified() || mapped.Port() != local.Port() {
		return false
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if p, ok := netip.AddrFromSlice(ipOf(a)); ok && p.Unmap() == mapped.Addr() {
			return true
		}
	}
	return false
}

func ipOf(a net.Addr) net.IP {
	switch a := a.(type) {
	case *net.IPNet:
		return a.IP
	case *net.IPAddr:
		return a.IP
	}
	return nil
}
