package cell

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// seedVectors loads spec/vectors/cells.json for seed corpora.
func seedVectors(f *testing.F) *cellVectors {
	f.Helper()
	v, err := loadCellVectors()
	if err != nil {
		f.Fatal(err)
	}
	return &v
}

// FuzzParse checks that Parse never panics, accepts exactly the whole cells
// with a known command, and copies them faithfully. The fuzzer works on a
// prefix that is zero-padded to a whole cell (so inputs stay small); the raw
// prefix is parsed too, to cover wrong lengths.
func FuzzParse(f *testing.F) {
	for _, cv := range seedVectors(f).Cells {
		f.Add(unhex(f, cv.Encoded))
	}
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 1, byte(CmdDirDone) + 1})
	f.Fuzz(func(t *testing.T, prefix []byte) {
		if c, err := Parse(prefix); err == nil {
			c.Free()
			if len(prefix) != Size {
				t.Fatalf("accepted %d bytes", len(prefix))
			}
		} else if !errors.Is(err, ErrShort) && !errors.Is(err, ErrCommand) {
			t.Fatalf("unexpected error %v", err)
		}
		if len(prefix) > Size {
			return
		}
		b := make([]byte, Size)
		copy(b, prefix)
		c, err := Parse(b)
		if err != nil {
			if b[4] <= byte(maxCommand) || !errors.Is(err, ErrCommand) {
				t.Fatalf("whole cell with command %d: %v", b[4], err)
			}
			return
		}
		defer c.Free()
		if c.Cmd() > maxCommand {
			t.Fatalf("accepted command %d", c.Cmd())
		}
		if !bytes.Equal(c.Bytes(), b) || c.Circ() != binary.BigEndian.Uint32(b) || byte(c.Cmd()) != b[4] {
			t.Fatal("Parse changed the cell")
		}
		for _, x := range c.Buf[Size:] {
			if x != 0 {
				t.Fatal("spare bytes not zero")
			}
		}
		if p, err := c.Payload(); err == nil {
			if len(p) != int(binary.BigEndian.Uint16(b[HeaderLen:])) {
				t.Fatalf("payload of %d bytes", len(p))
			}
			d := New(c.Circ(), c.Cmd())
			defer d.Free()
			if err := d.SetPayload(p); err != nil {
				t.Fatalf("SetPayload of a parsed payload: %v", err)
			}
			if !bytes.Equal(d.Bytes()[:HeaderLen+2+len(p)], b[:HeaderLen+2+len(p)]) {
				t.Fatal("payload does not re-encode to the same bytes")
			}
		}
	})
}

// FuzzParseRelay checks ParseRelay on a message-area prefix zero-padded to a
// body (and on the raw prefix, which is too short), and that an accepted
// message re-encodes to the same header and data.
func FuzzParseRelay(f *testing.F) {
	v := seedVectors(f)
	for _, rv := range v.RelayMessages {
		f.Add(unhex(f, rv.Encoded))
	}
	for _, bv := range v.BadRelayMessages {
		f.Add(unhex(f, bv.Encoded))
	}
	f.Fuzz(func(t *testing.T, prefix []byte) {
		if len(prefix) > BodyLen {
			return
		}
		if _, err := ParseRelay(prefix); err == nil && len(prefix) < MessageLen {
			t.Fatalf("accepted a %d-byte body", len(prefix))
		}
		body := newBody()
		copy(body, prefix)
		m, err := ParseRelay(body)
		if err != nil {
			return
		}
		if m.Cmd == 0 || len(m.Data) > MaxData {
			t.Fatalf("accepted %+v", m)
		}
		again := newBody()
		if err := PutRelay(again, m.Cmd, m.Stream, m.Data); err != nil {
			t.Fatalf("PutRelay of a parsed message: %v", err)
		}
		n := RelayHeaderLen + len(m.Data)
		if !bytes.Equal(again[:n], body[:n]) {
			t.Fatal("relay message does not re-encode to the same bytes")
		}
		if m2, err := ParseRelay(again); err != nil || m2.Cmd != m.Cmd || m2.Stream != m.Stream || !bytes.Equal(m2.Data, m.Data) {
			t.Fatalf("re-encoded message parses as %+v, %v", m2, err)
		}
	})
}

// FuzzParseExtend checks that ParseExtend never panics and that an accepted
// body that fits a relay message re-marshals to exactly the same bytes.
func FuzzParseExtend(f *testing.F) {
	v := seedVectors(f)
	for _, rv := range v.RelayMessages {
		if rv.Extend != nil {
			f.Add(unhex(f, rv.Data))
		}
	}
	for _, bv := range v.BadExtends {
		f.Add(unhex(f, bv.Encoded))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseExtend(b)
		if err != nil {
			return
		}
		if len(e.Addr) == 0 || len(e.Addr) > 255 {
			t.Fatalf("address of %d bytes accepted", len(e.Addr))
		}
		// The address is [scheme://]ip:port with an IP literal (IPv6 in
		// brackets), and writing the parsed parts back gives it again.
		scheme, ap, err := ParseExtendAddr(e.Addr)
		if err != nil || !ap.Addr().IsValid() || ap.Port() == 0 || ap.Addr().Zone() != "" {
			t.Fatalf("address %q accepted: %v, %v", e.Addr, ap, err)
		}
		hostport := e.Addr
		if scheme != "" {
			hostport = e.Addr[len(scheme)+len("://"):]
		}
		host, _, err := net.SplitHostPort(hostport)
		if err != nil {
			t.Fatalf("address %q: %v", e.Addr, err)
		}
		ip, err := netip.ParseAddr(host)
		if err != nil || ip.Unmap() != ap.Addr() || (ip.Is6() != strings.HasPrefix(hostport, "[")) {
			t.Fatalf("address %q: host %q parsed as %v", e.Addr, host, ap)
		}
		again, err := e.Marshal()
		if len(b) > MaxData {
			if err == nil {
				t.Fatalf("Marshal accepted %d bytes", len(again))
			}
			return
		}
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-marshalled EXTEND differs: %v", err)
		}
	})
}

// FuzzParseBegin checks that ParseBegin never panics, that an accepted
// target passes SplitTarget, and that the body re-marshals unchanged.
func FuzzParseBegin(f *testing.F) {
	v := seedVectors(f)
	for _, rv := range v.RelayMessages {
		if rv.Begin != nil {
			f.Add(unhex(f, rv.Data))
		}
	}
	for _, bv := range v.BadBegins {
		f.Add(unhex(f, bv.Encoded))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		b, err := ParseBegin(p)
		if err != nil {
			return
		}
		if _, err := SplitTarget(b.Target); err != nil {
			t.Fatalf("accepted target %q fails SplitTarget: %v", b.Target, err)
		}
		again, err := b.Marshal()
		if err != nil || !bytes.Equal(again, p) {
			t.Fatalf("re-marshalled BEGIN differs: %v", err)
		}
	})
}

// FuzzSplitTarget checks that SplitTarget never panics, that what it accepts
// meets its contract, and that host and port joined again name the same
// target.
func FuzzSplitTarget(f *testing.F) {
	v := seedVectors(f)
	for _, tv := range v.Targets {
		f.Add(tv.Target)
	}
	for _, s := range v.BadTargets {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := SplitTarget(s)
		if err != nil {
			return
		}
		if tg.Host == "" || len(tg.Host) > 255 || tg.Port == 0 {
			t.Fatalf("%q accepted as %+v", s, tg)
		}
		for i := 0; i < len(tg.Host); i++ {
			if c := tg.Host[i]; c <= ' ' || c == 0x7f || c == '%' {
				t.Fatalf("%q: control, space or %% byte %#x in host", s, c)
			}
		}
		// Brackets hold exactly the IPv6 literals, which need them.
		ip, err := netip.ParseAddr(tg.Host)
		if strings.HasPrefix(s, "[") != (err == nil && ip.Is6()) {
			t.Fatalf("%q accepted with host %q: brackets around something else than IPv6", s, tg.Host)
		}
		again, err := SplitTarget(net.JoinHostPort(tg.Host, strconv.Itoa(int(tg.Port))))
		if err != nil || again != tg {
			t.Fatalf("%q: joined again gives %+v, %v", s, again, err)
		}
	})
}
