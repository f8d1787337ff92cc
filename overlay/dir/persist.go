package dir

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/darkmatter/darkmatter/overlay/descriptor"
)

// Saved directory file (spec/gossip.md §6), all integers big-endian:
//
//	magic "DMDS" (4) | version 1 (1) | count (4) | count × entry
//	entry: length (2) | descriptor (length) | first seen, unix seconds (8) |
//	       flags (1; bit 0 confirmed) | successes (4) | failures (4) |
//	       source length (1) | source
const (
	saveMagic   = "DMDS"
	saveVersion = 1
)

var errSaved = errors.New("dir: malformed saved directory")

// Save writes every fresh relay with what the directory knows of it (first
// seen, confirmed, reachability counters, source) to w, in the format Load
// reads. The descriptors are written as signed, byte for byte.
func (dir *Directory) Save(w io.Writer) error {
	now := dir.now()
	dir.mu.Lock()
	recs := make([]entry, 0, len(dir.relays))
	for _, e := range dir.relays {
		if !e.d.Expired(now) {
			recs = append(recs, *e)
		}
	}
	dir.mu.Unlock()
	bw := bufio.NewWriter(w)
	var hdr []byte
	hdr = append(hdr, saveMagic...)
	hdr = append(hdr, saveVersion)
	hdr = binary.BigEndian.AppendUint32(hdr, uint32(len(recs)))
	bw.Write(hdr)
	var b []byte
	for _, r := range recs {
		raw := r.d.Marshal()
		b = binary.BigEndian.AppendUint16(b[:0], uint16(len(raw)))
		b = append(b, raw...)
		b = binary.BigEndian.AppendUint64(b, uint64(r.firstSeen.Unix()))
		var flags byte
		if r.confirmed {
			flags |= 1
		}
		b = append(b, flags)
		b = binary.BigEndian.AppendUint32(b, r.successes)
		b = binary.BigEndian.AppendUint32(b, r.failures)
		src := r.source
		if len(src) > 255 {
			src = src[:255]
		}
		b = append(b, byte(len(src)))
		b = append(b, src...)
		if _, err := bw.Write(b); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// Load reads a directory Save wrote and adds its relays with their saved
// knowledge. Each descriptor is checked again (descriptor.Parse, network,
// freshness now); stale or bad ones are dropped. Relays beyond MaxRelays
// are skipped, and a relay already held keeps the newer descriptor and the
// earlier first-seen time. It returns how many relays it added or updated,
// and an error for a file that is not in the format (the relays before
// the error are kept).
func (dir *Directory) Load(r io.Reader) (int, error) {
	br := bufio.NewReader(r)
	var hdr [9]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return 0, fmt.Errorf("%w: header: %w", errSaved, err)
	}
	if string(hdr[:4]) != saveMagic {
		return 0, fmt.Errorf("%w: bad magic", errSaved)
	}
	if hdr[4] != saveVersion {
		return 0, fmt.Errorf("%w: version %d (this software reads %d)", errSaved, hdr[4], saveVersion)
	}
	count := binary.BigEndian.Uint32(hdr[5:])
	buf := make([]byte, descriptor.MaxSize)
	n := 0
	for i := uint32(0); i < count; i++ {
		var l [2]byte
		if _, err := io.ReadFull(br, l[:]); err != nil {
			return n, fmt.Errorf("%w: entry %d: %w", errSaved, i, err)
		}
		size := int(binary.BigEndian.Uint16(l[:]))
		if size > descriptor.MaxSize {
			return n, fmt.Errorf("%w: entry %d of %d bytes", errSaved, i, size)
		}
		var meta [18]byte
		if _, err := io.ReadFull(br, buf[:size]); err != nil {
			return n, fmt.Errorf("%w: entry %d: %w", errSaved, i, err)
		}
		if _, err := io.ReadFull(br, meta[:]); err != nil {
			return n, fmt.Errorf("%w: entry %d: %w", errSaved, i, err)
		}
		src := make([]byte, meta[17])
		if _, err := io.ReadFull(br, src); err != nil {
			return n, fmt.Errorf("%w: entry %d: %w", errSaved, i, err)
		}
		if meta[8]&^1 != 0 {
			return n, fmt.Errorf("%w: entry %d: flags %#x", errSaved, i, meta[8])
		}
		d, err := descriptor.Parse(buf[:size])
		if err != nil || d.Network != dir.network || d.CheckTime(dir.now()) != nil {
			continue
		}
		seen := int64(binary.BigEndian.Uint64(meta[:8]))
		if seen < 0 || seen > descriptor.MaxUnixTime {
			seen = dir.now().Unix()
		}
		e := &entry{
			d: d, firstSeen: time.Unix(seen, 0).UTC(), source: string(src), srcGroup: sourceGroup(string(src)),
			confirmed: meta[8]&1 != 0, successes: binary.BigEndian.Uint32(meta[9:]), failures: binary.BigEndian.Uint32(meta[13:]),
			groups: groupsOf(d),
		}
		if dir.loadEntry(e) {
			n++
		}
	}
	return n, nil
}

// loadEntry adds a loaded entry, or merges it into the one held.
func (dir *Directory) loadEntry(e *entry) bool {
	id := e.d.NodeID()
	dir.mu.Lock()
	defer dir.mu.Unlock()
	old := dir.relays[id]
	if old == nil {
		if len(dir.relays) >= dir.maxRelays {
			return false
		}
		dir.insertLocked(id, e)
		return true
	}
	if e.firstSeen.Before(old.firstSeen) {
		old.firstSeen = e.firstSeen
	}
	old.successes = max(old.successes, e.successes)
	old.failures = max(old.failures, e.failures)
	if e.confirmed {
		dir.confirmLocked(old)
	}
	if !e.d.Published.After(old.d.Published) {
		return false
	}
	dir.countGroupsLocked(old.groups, -1)
	dir.countGroupsLocked(e.groups, +1)
	old.d, old.groups = e.d, e.groups
	dir.snap = nil
	return true
}
