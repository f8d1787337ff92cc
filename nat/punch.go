package nat

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// Punch defaults.
const (
	DefaultPunchTimeout    = 5 * time.Second
	DefaultPunchInterval   = 100 * time.Millisecond
	DefaultPunchMaxPackets = 200
	finalAcks              = 2 // acks sent when a punch succeeds
)

// PunchOptions tunes [Punch]; the zero value uses the defaults.
type PunchOptions struct {
	// Start is the agreed moment (from Coordinate) to send the first
	// probe; Punch waits until then. Zero means now.
	Start time.Time
	// Timeout bounds the punch from Start; 0 means DefaultPunchTimeout.
	Timeout time.Duration
	// Interval is the time between rounds of probes; 0 means
	// DefaultPunchInterval.
	Interval time.Duration
	// MaxPackets bounds the probes and acks sent; 0 means
	// DefaultPunchMaxPackets.
	MaxPackets int
}

// Punch opens a direct UDP path from pc to the peer. Both sides call it at
// the moment Coordinate agreed, each with the other's candidates. Each
// round sends a probe carrying the session nonce (peer.Nonce) to every
// candidate; a probe received from the peer is answered with an ack to
// its source address, and an ack received from the peer proves the path
// both ways: Punch then sends two acks back (so the peer learns it too)
// and returns the address the ack came from — which may be none of the
// candidates when the peer's NAT gave it a new port for us. Packets without
// the session nonce, and the side's own packets, are ignored; Punch reads
// from pc during the call and discards what is not a punch packet, and
// clears pc's read deadline when it returns.
//
// It returns an error wrapping ErrPunchFailed when the timeout passes
// without an ack, and ctx's error when ctx ends first.
func Punch(ctx context.Context, pc net.PacketConn, peer Candidates, opts PunchOptions) (netip.AddrPort, error) {
	if len(peer.Addrs) == 0 {
		return netip.AddrPort{}, ErrNoCandidates
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultPunchTimeout
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultPunchInterval
	}
	if opts.MaxPackets <= 0 {
		opts.MaxPackets = DefaultPunchMaxPackets
	}
	if opts.Start.IsZero() {
		opts.Start = time.Now()
	}
	if d := time.Until(opts.Start); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return netip.AddrPort{}, fmt.Errorf("nat: punch: %w", ctx.Err())
		case <-t.C:
		}
	}
	stop := context.AfterFunc(ctx, func() { _ = pc.SetReadDeadline(time.Now()) })
	defer func() {
		stop()
		_ = pc.SetReadDeadline(time.Time{})
	}()

	self := PunchPacket{Nonce: peer.Nonce}
	_, _ = rand.Read(self.Sender[:])
	probe, _ := self.MarshalBinary()
	ackPkt := self
	ackPkt.Ack = true
	ack, _ := ackPkt.MarshalBinary()

	end := opts.Start.Add(opts.Timeout)
	sent := 0
	write := func(b []byte, to netip.AddrPort) error {
		if sent >= opts.MaxPackets {
			return nil
		}
		sent++
		if _, err := pc.WriteTo(b, udpAddr(to)); err != nil && errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("nat: punch: %w", err)
		}
		return nil
	}
	buf := make([]byte, maxDatagram)
	next := time.Now()
	for {
		if err := ctx.Err(); err != nil {
			return netip.AddrPort{}, fmt.Errorf("nat: punch: %w", err)
		}
		now := time.Now()
		if !now.Before(end) {
			return netip.AddrPort{}, fmt.Errorf("%w after %d packets", ErrPunchFailed, sent)
		}
		if !now.Before(next) {
			for _, a := range peer.Addrs {
				if err := write(probe, a); err != nil {
					return netip.AddrPort{}, err
				}
			}
			next = now.Add(opts.Interval)
		}
		wake := next
		if end.Before(wake) {
			wake = end
		}
		if err := pc.SetReadDeadline(wake); err != nil {
			return netip.AddrPort{}, fmt.Errorf("nat: punch: %w", err)
		}
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				if isTimeout(err) {
					break
				}
				return netip.AddrPort{}, fmt.Errorf("nat: punch: %w", err)
			}
			var p PunchPacket
			src, ok := AddrPortOf(from)
			if !ok || p.UnmarshalBinary(buf[:n]) != nil || p.Nonce != self.Nonce || p.Sender == self.Sender {
				continue
			}
			if !p.Ack {
				if err := write(ack, src); err != nil {
					return netip.AddrPort{}, err
				}
				continue
			}
			for range finalAcks {
				if _, err := pc.WriteTo(ack, udpAddr(src)); err != nil && errors.Is(err, net.ErrClosed) {
					return netip.AddrPort{}, fmt.Errorf("nat: punch: %w", err)
				}
			}
			return src, nil
		}
	}
}
