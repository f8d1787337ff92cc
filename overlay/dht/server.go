package dht

import (
	"context"
	"time"
)

// HandleRequest answers one request from a peer, as a server: PING with
// PONG, FIND_NODE with NODES, FIND_VALUE with VALUE, STORE with STORED. It
// returns nil, and the transport sends nothing, when this node is not a
// Server or the request does not decode. from must be the authenticated
// peer (its ID from the link, its address from the directory); it is
// added to the routing table when the request says it is a server.
func (d *DHT) HandleRequest(ctx context.Context, from Contact, req []byte) []byte {
	if !d.cfg.Server || d.live() != nil {
		return nil
	}
	d.stats.requests.Add(1)
	m, err := ParseMessage(req)
	if err != nil || m.Kind%2 == 0 {
		d.stats.refuse(ReasonMalformed)
		return nil
	}
	if m.Flags&FlagServer != 0 {
		d.table.add(from)
	}
	a := &Message{ID: m.ID, Flags: FlagServer}
	switch m.Kind {
	case KindPing:
		a.Kind = KindPong
	case KindFindNode:
		a.Kind = KindNodes
		a.Contacts = d.table.closest(m.Target, d.cfg.K)
	case KindFindValue:
		a.Kind = KindValue
		a.Contacts = d.table.closest(m.Target, d.cfg.K)
		a.Records = d.fitRecords(d.store.get(m.Type, m.Target, d.cfg.Now()), len(a.Contacts))
	case KindStore:
		a.Kind = KindStored
		a.Status = d.handleStore(from, m.Records[0])
	}
	b, err := a.Marshal()
	if err != nil {
		return nil // unreachable: answers are built within the limits
	}
	return b
}

// fitRecords keeps as many of rs as fit in one VALUE beside n contacts.
func (d *DHT) fitRecords(rs []*Record, n int) []*Record {
	room := MaxMessageSize - headerSize - 2 - n*(KeySize+1+maxAddrLen)
	var out []*Record
	for _, r := range rs {
		if len(out) == MaxRecords || room < 2+r.Size() {
			break
		}
		room -= 2 + r.Size()
		out = append(out, r)
	}
	return out
}

func (d *DHT) handleStore(from Contact, r *Record) Reason {
	now := d.cfg.Now()
	if !d.store.allow(from.ID, now) {
		d.stats.refuse(ReasonRate)
		return ReasonRate
	}
	return d.storeLocalAt(r, now)
}

func (d *DHT) storeLocal(r *Record) Reason { return d.storeLocalAt(r, d.cfg.Now()) }

func (d *DHT) storeLocalAt(r *Record, now time.Time) Reason {
	if err := d.verify(r, now); err != nil {
		rs := reasonOf(err)
		d.stats.refuse(rs)
		return rs
	}
	rs := d.store.putAt(r, now, d.cfg.Registry.exclusive(r.Type))
	d.stats.refuse(rs)
	return rs
}
