package dir

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/defaults"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
)

// Defaults for the Admission fields of the same names.
const (
	DefaultPerSlash24 = 4   // relays per IPv4 /24
	DefaultPerSlash16 = 16  // relays per IPv4 /16
	DefaultPerSlash48 = 4   // relays per IPv6 /48
	DefaultPerSlash32 = 16  // relays per IPv6 /32
	DefaultPerDomain  = 4   // relays per DNS domain (last two labels)
	DefaultPerSource  = 256 // unconfirmed relays one source introduced
)

// unreliableMargin: a relay with more failures than successes plus this
// margin counts as measured unreliable, and a newcomer may evict it.
const unreliableMargin = 2

// Admission is the Sybil policy for relays learned from peers (AddFrom).
// Signatures are cheap to make and advertised addresses are claims, so the
// rules bound what one introducer and one network block can occupy, and
// protect relays that have been seen long and worked:
//
//   - Subnet caps: at most PerSlash24 relays advertise an address in one
//     IPv4 /24 and PerSlash16 in one /16 (IPv6: PerSlash48, PerSlash32);
//     every address of a descriptor counts, and a DNS name counts against
//     its domain (the last two labels, PerDomain). Loopback addresses that
//     a loopback source (or the node itself) introduced are not capped.
//   - Source limit: one source (a peer's IPv4 address or IPv6 /64, see
//     linkmgr.Link.Source) may hold at most PerSource relays that it
//     introduced and that are still unconfirmed. A relay is confirmed when
//     a source of another /16 (IPv6 /32) offers it too, or by Confirm (a
//     direct link to it completed). Updates of known relays (a newer
//     Published) are taken from any source: they are signed. A loopback
//     source (a peer on this host, outside the threat model) has no limit.
//   - Full directory (Config.MaxRelays): a new relay may evict only an
//     entry that is unconfirmed or measured unreliable (failures >
//     successes+2, NoteReachable). Unreliable entries go first, then the
//     unconfirmed entries of the source holding the most unconfirmed
//     relays, the most recently first seen among them. A confirmed,
//     reliable relay is never evicted by a newcomer; with none to evict
//     the newcomer is refused.
//
// The zero value enforces the defaults.
type Admission struct {
	// Relaxed turns the subnet caps off, for a loopback or test network
	// where every relay shares an address block. The source limit and
	// the eviction rule still apply.
	Relaxed bool
	// PerSlash24 and PerSlash16 cap relays per IPv4 /24 and /16. Zero
	// means DefaultPerSlash24, DefaultPerSlash16.
	PerSlash24, PerSlash16 int
	// PerSlash48 and PerSlash32 cap relays per IPv6 /48 and /32. Zero
	// means DefaultPerSlash48, DefaultPerSlash32.
	PerSlash48, PerSlash32 int
	// PerDomain caps relays whose address names one DNS domain. Zero
	// means DefaultPerDomain.
	PerDomain int
	// PerSource caps the unconfirmed relays one source introduced. Zero
	// means DefaultPerSource.
	PerSource int
}

// RelaxedAdmission returns the admission rules of a loopback or test
// network: the defaults without subnet caps.
func RelaxedAdmission() Admission { return Admission{Relaxed: true} }

func (a *Admission) setDefaults() {
	defaults.Set(&a.PerSlash24, DefaultPerSlash24)
	defaults.Set(&a.PerSlash16, DefaultPerSlash16)
	defaults.Set(&a.PerSlash48, DefaultPerSlash48)
	defaults.Set(&a.PerSlash32, DefaultPerSlash32)
	defaults.Set(&a.PerDomain, DefaultPerDomain)
	defaults.Set(&a.PerSource, DefaultPerSource)
}

// Admission refusals returned by AddFrom (wrapped; test with errors.Is).
var (
	ErrWrongNetwork = errors.New("dir: descriptor of another network")
	ErrStale        = errors.New("dir: descriptor not fresh")
	ErrNotNewer     = errors.New("dir: descriptor not newer than the one held")
	ErrSubnetFull   = errors.New("dir: subnet cap reached")
	ErrSourceLimit  = errors.New("dir: the source introduced too many unconfirmed relays")
	ErrFull         = errors.New("dir: directory full of confirmed, reliable relays")
)

// AdmitStats count the outcomes of Add and AddFrom.
type AdmitStats struct {
	Added     uint64 // new relays taken
	Updated   uint64 // newer descriptors of known relays taken
	Confirmed uint64 // relays confirmed (second source, Confirm)
	Evicted   uint64 // entries evicted for a newcomer
	NotNewer  uint64 // refused: not newer than the one held
	Network   uint64 // refused: another network
	Stale     uint64 // refused: not fresh (CheckTime)
	Subnet    uint64 // refused: a subnet or domain cap
	Source    uint64 // refused: the source's PerSource limit
	Full      uint64 // refused: full, nothing evictable
}

// entry is what the directory keeps per relay.
type entry struct {
	d         *descriptor.Descriptor
	firstSeen time.Time // local knowledge, kept across updates and Save/Load
	source    string    // who introduced it; "" for the node itself
	srcGroup  string    // the source's /16 (IPv6 /32)
	confirmed bool
	successes uint32
	failures  uint32
	groups    []group // counted in Directory.groups
}

func (e *entry) unreliable() bool { return int64(e.failures) > int64(e.successes)+unreliableMargin }

// group is a subnet or domain a descriptor's addresses fall in.
type group struct {
	key  string // "192.0.2.0/24", "2001:db8::/32", "dns:example.org"
	kind byte   // 24, 16, 48, 32 or 'd'
	loop bool   // a loopback block
}

// groupsOf returns the groups of d's addresses, each once.
func groupsOf(d *descriptor.Descriptor) []group {
	var out []group
	add := func(g group) {
		for _, h := range out {
			if h.key == g.key {
				return
			}
		}
		out = append(out, g)
	}
	for _, a := range d.Addrs {
		_, hp, err := descriptor.SplitAddr(a)
		if err != nil {
			continue
		}
		host, _, err := net.SplitHostPort(hp)
		if err != nil {
			continue
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			add(group{key: "dns:" + domainOf(host), kind: 'd'})
			continue
		}
		ip = ip.Unmap()
		loop := ip.IsLoopback()
		if ip.Is4() {
			add(group{key: netip.PrefixFrom(ip, 24).Masked().String(), kind: 24, loop: loop})
			add(group{key: netip.PrefixFrom(ip, 16).Masked().String(), kind: 16, loop: loop})
		} else {
			add(group{key: netip.PrefixFrom(ip, 48).Masked().String(), kind: 48, loop: loop})
			add(group{key: netip.PrefixFrom(ip, 32).Masked().String(), kind: 32, loop: loop})
		}
	}
	return out
}

// domainOf returns the last two labels of a DNS name, lower case.
func domainOf(host string) string {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	labels := strings.Split(host, ".")
	if len(labels) > 2 {
		labels = labels[len(labels)-2:]
	}
	return strings.Join(labels, ".")
}

func (a *Admission) capOf(g group) int {
	switch g.kind {
	case 24:
		return a.PerSlash24
	case 16:
		return a.PerSlash16
	case 48:
		return a.PerSlash48
	case 32:
		return a.PerSlash32
	}
	return a.PerDomain
}

// sourceGroup returns the block whose sources count as one for
// confirmation: the /16 of an IPv4 source, the /32 of an IPv6 one, or the
// source itself when it is not an address.
func sourceGroup(src string) string {
	ip, err := netip.ParseAddr(src)
	if err != nil {
		return src
	}
	ip = ip.Unmap()
	if ip.Is4() {
		return netip.PrefixFrom(ip, 16).Masked().String()
	}
	return netip.PrefixFrom(ip, 32).Masked().String()
}

// localSource reports whether src is the node itself or a loopback peer.
func localSource(src string) bool {
	if src == "" {
		return true
	}
	ip, err := netip.ParseAddr(src)
	return err == nil && ip.IsLoopback()
}

// AddFrom offers d, learned from source src (the introducing peer's
// linkmgr.Link.Source, "" for the node itself), to the directory under the
// Admission rules. It reports whether d was stored and, if not, why
// (ErrWrongNetwork, ErrStale, ErrNotNewer, ErrSubnetFull, ErrSourceLimit or
// ErrFull, wrapped). An offer of a known relay from a source of another
// /16 confirms it even when the descriptor is not newer. d must come from
// descriptor.Parse and must not be modified afterwards.
func (dir *Directory) AddFrom(d *descriptor.Descriptor, src string) (ok bool, why error) {
	return dir.admit(d, src, false)
}

// ChooseSource marks src (a link's source, linkmgr.Link.Source) as one the
// node chose to learn the relay list from, or unmarks it: a client's
// bootstrap relay and primary guards, its directory sources. A chosen
// source may introduce as many unconfirmed relays as the directory holds
// (the subnet caps still apply): the per-source limit is for what peers
// push, and a client that took at most PerSource relays from the relays it
// chose would never learn a network larger than that. What a chosen source
// introduces stays unconfirmed until another source of another /16 offers
// it too, so guards (which must be confirmed) never come from one source.
// At most maxChosen sources are chosen at once.
func (dir *Directory) ChooseSource(src string, on bool) {
	dir.mu.Lock()
	defer dir.mu.Unlock()
	if !on {
		delete(dir.chosen, src)
		return
	}
	if len(dir.chosen) < maxChosen {
		dir.chosen[src] = true
	}
}

// maxChosen bounds the sources marked chosen.
const maxChosen = 16

// sourceLimitLocked returns how many unconfirmed relays src may hold.
func (dir *Directory) sourceLimitLocked(src string) int {
	if dir.chosen[src] {
		return dir.maxRelays
	}
	return dir.adm.PerSource
}

// admit is Add (trusted) and AddFrom.
func (dir *Directory) admit(d *descriptor.Descriptor, src string, trusted bool) (bool, error) {
	now := dir.now()
	if d.Network != dir.network {
		dir.count(func(s *AdmitStats) { s.Network++ })
		return false, ErrWrongNetwork
	}
	if err := d.CheckTime(now); err != nil {
		dir.count(func(s *AdmitStats) { s.Stale++ })
		return false, fmt.Errorf("%w: %w", ErrStale, err)
	}
	id := d.NodeID()
	gs := groupsOf(d)
	sg := sourceGroup(src)
	dir.mu.Lock()
	defer dir.mu.Unlock()
	if old := dir.relays[id]; old != nil {
		if trusted || (src != "" && sg != old.srcGroup) {
			dir.confirmLocked(old)
		}
		if !d.Published.After(old.d.Published) {
			dir.stats.Admit.NotNewer++
			return false, ErrNotNewer
		}
		if !trusted {
			if err := dir.checkCapsLocked(gs, old.groups, src); err != nil {
				dir.stats.Admit.Subnet++
				dir.noteRefusedLocked(id, d)
				return false, err
			}
		}
		dir.countGroupsLocked(old.groups, -1)
		dir.countGroupsLocked(gs, +1)
		old.d, old.groups = d, gs
		dir.snap = nil
		dir.stats.Admit.Updated++
		return true, nil
	}
	if !trusted {
		if err := dir.checkCapsLocked(gs, nil, src); err != nil {
			dir.stats.Admit.Subnet++
			dir.noteRefusedLocked(id, d)
			return false, err
		}
		if !localSource(src) && dir.sources[src] >= dir.sourceLimitLocked(src) {
			dir.stats.Admit.Source++
			return false, ErrSourceLimit
		}
	}
	if len(dir.relays) >= dir.maxRelays && !dir.evictLocked(now) {
		dir.stats.Admit.Full++
		if !trusted {
			dir.noteRefusedLocked(id, d)
		}
		return false, ErrFull
	}
	e := &entry{d: d, firstSeen: now, source: src, srcGroup: sg, confirmed: trusted, groups: gs}
	dir.insertLocked(id, e)
	dir.stats.Admit.Added++
	return true, nil
}

// insertLocked stores a new entry and counts it.
func (dir *Directory) insertLocked(id keys.NodeID, e *entry) {
	dir.relays[id] = e
	dir.countGroupsLocked(e.groups, +1)
	if !e.confirmed && e.source != "" {
		dir.sources[e.source]++
	}
	dir.snap = nil
}

func (dir *Directory) count(f func(*AdmitStats)) {
	dir.mu.Lock()
	f(&dir.stats.Admit)
	dir.mu.Unlock()
}

// checkCapsLocked checks gs against the subnet caps, not counting the
// groups in minus (the entry being replaced).
func (dir *Directory) checkCapsLocked(gs, minus []group, src string) error {
	if dir.adm.Relaxed {
		return nil
	}
	local := localSource(src)
	for _, g := range gs {
		if g.loop && local {
			continue
		}
		n := dir.groups[g.key]
		for _, m := range minus {
			if m.key == g.key {
				n--
			}
		}
		if n >= dir.adm.capOf(g) {
			return fmt.Errorf("%w: %d relays in %s", ErrSubnetFull, n, g.key)
		}
	}
	return nil
}

func (dir *Directory) countGroupsLocked(gs []group, delta int) {
	for _, g := range gs {
		n := dir.groups[g.key] + delta
		if n <= 0 {
			delete(dir.groups, g.key)
		} else {
			dir.groups[g.key] = n
		}
	}
}

// noteRefusedLocked remembers that d's version of relay id was refused, so
// Sync does not ask for it again; the memory is bounded by MaxRelays and
// forgotten whenever room frees.
func (dir *Directory) noteRefusedLocked(id keys.NodeID, d *descriptor.Descriptor) {
	if len(dir.refused) >= dir.maxRelays {
		clear(dir.refused)
	}
	dir.refused[id] = d.Published.Unix()
}

// removeLocked forgets relay id.
func (dir *Directory) removeLocked(id keys.NodeID, e *entry) {
	delete(dir.relays, id)
	dir.countGroupsLocked(e.groups, -1)
	if !e.confirmed && e.source != "" {
		if n := dir.sources[e.source] - 1; n <= 0 {
			delete(dir.sources, e.source)
		} else {
			dir.sources[e.source] = n
		}
	}
	dir.snap = nil
	clear(dir.refused)
}

// evictLocked makes room for a newcomer: it drops the expired entries or
// else the worst evictable one (see Admission), and reports whether it
// made room.
func (dir *Directory) evictLocked(now time.Time) bool {
	var (
		worst   *entry
		worstID keys.NodeID
		expired bool
	)
	for id, e := range dir.relays {
		if e.d.Expired(now) {
			dir.removeLocked(id, e)
			expired = true
			continue
		}
		if expired || (e.confirmed && !e.unreliable()) {
			continue
		}
		if worst == nil || dir.worseLocked(e, worst) {
			worst, worstID = e, id
		}
	}
	if expired {
		return true
	}
	if worst == nil {
		return false
	}
	dir.removeLocked(worstID, worst)
	dir.stats.Admit.Evicted++
	return true
}

// worseLocked reports whether evictable entry a goes before b.
func (dir *Directory) worseLocked(a, b *entry) bool {
	if au, bu := a.unreliable(), b.unreliable(); au != bu {
		return au
	}
	if na, nb := dir.unconfirmedOf(a), dir.unconfirmedOf(b); na != nb {
		return na > nb
	}
	return a.firstSeen.After(b.firstSeen)
}

func (dir *Directory) unconfirmedOf(e *entry) int {
	if e.confirmed {
		return 0
	}
	return dir.sources[e.source]
}

func (dir *Directory) confirmLocked(e *entry) {
	if e.confirmed {
		return
	}
	e.confirmed = true
	dir.stats.Admit.Confirmed++
	if e.source == "" {
		return
	}
	if n := dir.sources[e.source] - 1; n <= 0 {
		delete(dir.sources, e.source)
	} else {
		dir.sources[e.source] = n
	}
}

// Confirm marks relay id as confirmed: the node completed a direct link to
// it whose HELLO carried its descriptor. A confirmed relay no longer
// counts against its introducer's PerSource limit, and a newcomer cannot
// evict it unless it turns unreliable.
func (dir *Directory) Confirm(id keys.NodeID) {
	dir.mu.Lock()
	defer dir.mu.Unlock()
	if e := dir.relays[id]; e != nil {
		dir.confirmLocked(e)
	}
}

// NoteReachable counts a measured outcome for relay id: a link or EXTEND
// to it that worked (ok) or failed. Path and circuit code report them; a
// relay with failures > successes+2 may be evicted by a newcomer.
func (dir *Directory) NoteReachable(id keys.NodeID, ok bool) {
	dir.mu.Lock()
	defer dir.mu.Unlock()
	e := dir.relays[id]
	if e == nil {
		return
	}
	if ok {
		e.successes = satInc(e.successes)
	} else {
		e.failures = satInc(e.failures)
	}
}

func satInc(v uint32) uint32 {
	if v == ^uint32(0) {
		return v
	}
	return v + 1
}

// Info is the directory's local knowledge of a relay.
type Info struct {
	FirstSeen time.Time // when this directory first stored it
	Confirmed bool      // offered by a second /16, or Confirm
	Successes uint32    // NoteReachable(id, true) calls
	Failures  uint32    // NoteReachable(id, false) calls
	Source    string    // who introduced it ("" the node itself)
}

// Info returns what the directory knows of relay id beyond its descriptor.
func (dir *Directory) Info(id keys.NodeID) (Info, bool) {
	dir.mu.Lock()
	defer dir.mu.Unlock()
	e := dir.relays[id]
	if e == nil {
		return Info{}, false
	}
	return e.info(), true
}

func (e *entry) info() Info {
	return Info{FirstSeen: e.firstSeen, Confirmed: e.confirmed, Successes: e.successes, Failures: e.failures, Source: e.source}
}
