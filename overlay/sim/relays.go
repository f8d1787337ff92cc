package sim

import (
	"fmt"
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/circuit/protover"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
)

// relay is one simulated relay's identity and signed descriptor.
type relay struct {
	keys *keys.IdentityPrivateKey
	id   keys.NodeID
	ip   string // its address's IP: the Source its links show
	addr string // "tcp://ip:7000"
	raw  []byte // descriptor encoding
	desc *descriptor.Descriptor
}

// relayIP gives relay i an address in a /16 of its own (10.0/16,
// 10.1/16, ... 11.0/16, ...), so the default subnet caps of the directory
// and the DHT apply unchanged.
func relayIP(i int) string { return fmt.Sprintf("%d.%d.0.1", 10+i>>8, i&255) }

// newRelays makes count relays, numbered from first, with descriptors
// published at pub; the key material comes from seed, so a run is
// reproducible. Descriptors are made only when withDesc.
func newRelays(seed uint64, first, count int, pub time.Time, withDesc bool) ([]*relay, error) {
	out := make([]*relay, count)
	errs := make([]error, count)
	var wg sync.WaitGroup
	workers := 4
	for w := range workers {
		wg.Go(func() {
			for j := w; j < count; j += workers {
				out[j], errs[j] = makeRelay(seed, first+j, pub, withDesc)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func makeRelay(seed uint64, i int, pub time.Time, withDesc bool) (*relay, error) {
	var s [keys.SeedSize]byte
	for b := range 8 {
		s[b] = byte(seed >> (8 * b))
	}
	s[8], s[9], s[10], s[31] = byte(i), byte(i>>8), byte(i>>16), 0x51
	id := keys.IdentityFromSeed(s)
	r := &relay{keys: id, id: id.Public().NodeID(), ip: relayIP(i)}
	r.addr = "tcp://" + r.ip + ":7000"
	if !withDesc {
		return r, nil
	}
	var s64 [keys.KEMSeedSize]byte
	copy(s64[:], s[:])
	d := &descriptor.Descriptor{
		Network:      Network,
		Link:         keys.LinkFromBytes(s).Public(),
		Onion:        keys.OnionFromBytes(s).Public(),
		OnionExpires: pub.Add(7 * 24 * time.Hour),
		KEM:          *keys.KEMFromSeed(s64).Public(),
		Addrs:        []string{r.addr},
		ExitPolicy:   "reject *:*",
		Bandwidth:    1 << 20,
		Protocols:    protover.New(map[protover.ID]string{protover.Link: "1", protover.Relay: "1", protover.Dir: "1-3", protover.DHT: "1"}),
		Published:    pub,
	}
	d.Sign(id)
	r.raw = d.Marshal()
	pd, err := descriptor.Parse(r.raw)
	if err != nil {
		return nil, fmt.Errorf("sim: relay %d: %w", i, err)
	}
	r.desc = pd
	return r, nil
}

// interner is a dir.Config.Parse that hands every directory one shared,
// verified-once *Descriptor per distinct encoding: N directories of N
// relays then hold N descriptors, not N² (5,000² × ~5 KB would be 125 GB).
// Encodings it has not seen go through descriptor.Parse and are kept.
type interner struct {
	mu    sync.RWMutex
	known map[string]*descriptor.Descriptor
}

func newInterner(rs []*relay) *interner {
	in := &interner{known: make(map[string]*descriptor.Descriptor, len(rs))}
	for _, r := range rs {
		in.known[string(r.raw)] = r.desc
	}
	return in
}

func (in *interner) parse(b []byte) (*descriptor.Descriptor, error) {
	in.mu.RLock()
	d := in.known[string(b)]
	in.mu.RUnlock()
	if d != nil {
		return d, nil
	}
	d, err := descriptor.Parse(b)
	if err != nil {
		return nil, err
	}
	in.mu.Lock()
	in.known[string(b)] = d
	in.mu.Unlock()
	return d, nil
}
