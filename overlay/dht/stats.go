package dht

import "sync/atomic"

// Stats are the DHT's counters since New.
type Stats struct {
	Lookups       uint64             // FindNode, Get and Put lookups run
	LookupsOK     uint64             // lookups that reached at least one node (Get: found a record)
	Hops          uint64             // rounds summed over lookups (the longest path of each)
	MessagesSent  uint64             // requests sent
	BytesSent     uint64             // request bytes sent
	MessagesRecv  uint64             // answers received
	BytesRecv     uint64             // answer bytes received
	CallFailures  uint64             // requests with no valid answer
	Requests      uint64             // requests handled as a server
	RecordsStored uint64             // records held now
	BytesStored   uint64             // bytes of records held now
	Refused       [numReasons]uint64 // refusals by Reason (store and fetch); index 0 counts stores accepted
}

type stats struct {
	lookups, lookupsOK, hops atomic.Uint64
	msgsSent, bytesSent      atomic.Uint64
	msgsRecv, bytesRecv      atomic.Uint64
	failures, requests       atomic.Uint64
	refused                  [numReasons]atomic.Uint64
}

func (s *stats) sent(n int) {
	s.msgsSent.Add(1)
	s.bytesSent.Add(uint64(n))
}

func (s *stats) received(n int) {
	s.msgsRecv.Add(1)
	s.bytesRecv.Add(uint64(n))
}

func (s *stats) refuse(r Reason) {
	if r < numReasons {
		s.refused[r].Add(1)
	}
}

// Stats returns a snapshot of the counters.
func (d *DHT) Stats() Stats {
	s := &d.stats
	out := Stats{
		Lookups: s.lookups.Load(), LookupsOK: s.lookupsOK.Load(), Hops: s.hops.Load(),
		MessagesSent: s.msgsSent.Load(), BytesSent: s.bytesSent.Load(),
		MessagesRecv: s.msgsRecv.Load(), BytesRecv: s.bytesRecv.Load(),
		CallFailures: s.failures.Load(), Requests: s.requests.Load(),
	}
	n, b := d.store.usage()
	out.RecordsStored, out.BytesStored = uint64(n), uint64(b)
	for i := range s.refused {
		out.Refused[i] = s.refused[i].Load()
	}
	return out
}
