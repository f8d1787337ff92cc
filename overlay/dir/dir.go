package dir

import (
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/defaults"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
)

// Defaults for the Config fields of the same names. A descriptor's age
// limits are descriptor.MaxAge and descriptor.MaxClockSkew.
const (
	// DefaultMaxRelays bounds a Directory: room for a 5,000-relay network
	// three times over. An entry costs about 4.5 KB, so 72 MB at most.
	DefaultMaxRelays = 16384
	// DefaultAnswerWindow is how many cells a DIR_GET answer lets the
	// link's queue hold: 32 cells, 128 KiB.
	DefaultAnswerWindow = 32
	// DefaultMaxAnswers bounds the answers in flight that did not fit in
	// their first window: at most 64 × 32 cells, 8 MiB, queued for
	// directory answers in all.
	DefaultMaxAnswers = 64
	// DefaultAnswerTimeout is how long an answer may go without sending
	// (its link's queue stays at the window) before it is cut.
	DefaultAnswerTimeout = 10 * time.Second
	// DefaultGetInterval and DefaultGetBurst rate DIR_GETs per link: a
	// burst of 3, then one per minute (a client refreshes every 5).
	DefaultGetInterval = time.Minute
	DefaultGetBurst    = 3
)

// pollInterval is how often the serve loop looks at the queues of the
// answers in flight: with a 32-cell window, up to 3200 cells (12.8 MB) a
// second per answer.
const pollInterval = 10 * time.Millisecond

// Config configures a Directory. The zero value keeps descriptors of the
// default network ("darkmatter").
type Config struct {
	// Network is the network name; descriptors of other networks are
	// refused. Empty means "darkmatter".
	Network string
	// MaxRelays bounds how many relays the directory holds. A new relay
	// beyond it may only evict an unconfirmed or unreliable entry (see
	// Admission); otherwise it is refused. Updates of known relays are
	// still taken. Zero means DefaultMaxRelays.
	MaxRelays int
	// Admission holds the Sybil rules for relays learned from peers
	// (AddFrom): subnet caps and the per-source introduction limit. The
	// zero value enforces the defaults; RelaxedAdmission turns the subnet
	// caps off for a loopback or test network.
	Admission Admission
	// Gossip bounds the gossip exchange (spec/gossip.md). The zero value
	// means the defaults.
	Gossip GossipConfig
	// AnswerWindow is how many cells may wait in a link's queue while the
	// directory answers a DIR_GET on it: it adds a DIR_DESC only while the
	// queue of its own cells (Peer.LinkQueueLen) is shorter. Zero means DefaultAnswerWindow.
	AnswerWindow int
	// MaxAnswers bounds the answers in flight, over all links, that did
	// not fit in their first window; a DIR_GET beyond it is refused
	// (DIR_DONE DoneRefused). Zero means DefaultMaxAnswers.
	MaxAnswers int
	// AnswerTimeout cuts an answer (DIR_DONE DoneCut) that could not send
	// for this long. Zero means DefaultAnswerTimeout.
	AnswerTimeout time.Duration
	// GetInterval and GetBurst rate DIR_GETs per link (a token bucket of
	// GetBurst, refilled one per GetInterval); a DIR_GET over the rate is
	// refused. Zero means DefaultGetInterval, DefaultGetBurst.
	GetInterval time.Duration
	GetBurst    int
	// Now is the clock freshness is judged by; nil means time.Now. (The
	// pacing of answers and the DIR_GET rate use package time.)
	Now func() time.Time
	// Parse turns the descriptors received in DIR_DESC and GOSSIP DESC
	// into verified descriptors; nil means descriptor.Parse. It exists
	// for simulators that host many directories in one process (darkmatter
	// sim): an interning parser that returns one shared, verified-once
	// *Descriptor per distinct encoding keeps N directories of N relays
	// from holding N² parsed copies. It must verify like descriptor.Parse
	// and return descriptors nobody modifies (the directory never does).
	Parse func([]byte) (*descriptor.Descriptor, error)
}

// Stats are the directory's gauges and counters.
type Stats struct {
	Relays    int // descriptors held
	Fetches   int // our DIR_GETs waiting for DIR_DONE
	Peers     int // links with a DIR_GET rate or answer
	Answering int // answers in flight

	Answers     uint64 // answers completed
	AnswersCut  uint64 // answers cut (DoneCut sent, or the link failed)
	GetsRefused uint64 // DIR_GETs refused (DoneRefused): rate, MaxAnswers
	GetsDropped uint64 // DIR_GETs dropped while the link's answer was in flight
	Unsolicited uint64 // DIR_DESC and DIR_DONE no fetch of ours asked for, unknown cells
	Excess      uint64 // DIR_DESC beyond MaxRelays in one answer
	Bad         uint64 // DIR_DESC that did not parse or verify
	CutReceived uint64 // answers to our fetches that the peer cut

	Admit AdmitStats // admission outcomes (AddFrom, Add)

	Syncing            int    // our Sync rounds waiting for a peer
	GossipBytesSent    uint64 // GOSSIP cells sent, in bytes on the link (cell.Size each)
	GossipBytesRecv    uint64 // GOSSIP cells received, likewise
	GossipRefused      uint64 // gossip requests refused (BUSY): rate, MaxAnswers, window
	GossipUnsolicited  uint64 // gossip answers no Sync of ours asked for, descriptors not wanted
	GossipMalformed    uint64 // GOSSIP cells that did not decode, unknown types
	GossipWantsDropped uint64 // WANT entries beyond MaxRelays per request, or beyond the total bound
}

// Directory holds the verified, fresh relay descriptors of one network. It
// is safe for concurrent use.
type Directory struct {
	network       string
	maxRelays     int
	window        int
	maxAnswers    int
	answerTimeout time.Duration
	getInterval   time.Duration
	getBurst      int
	adm           Admission
	gossip        GossipConfig
	now           func() time.Time
	parse         func([]byte) (*descriptor.Descriptor, error)
	done          chan struct{} // closed by Close
	wg            sync.WaitGroup

	// mu guards the following.
	mu        sync.Mutex
	relays    map[keys.NodeID]*entry
	groups    map[string]int           // relays per subnet group (admission.go)
	sources   map[string]int           // unconfirmed relays per introducing source
	chosen    map[string]bool          // sources the node chose (ChooseSource)
	refused   map[keys.NodeID]int64    // (id, published) refused lately, not asked again by Sync
	snap      []*descriptor.Descriptor // relays as a list, shared by answers; nil when stale
	syncs     map[Peer]*session        // our Sync rounds, by peer
	wanting   int                      // WANT entries held over all links (serving side)
	fetches   map[Peer]*fetch          // DIR_GET sent, DIR_DONE awaited
	peers     map[Peer]*peerState      // links that sent DIR_GET
	answering int                      // peers with an answer in flight
	pending   []*answer                // answers for the serve loop
	running   bool                     // the serve loop runs
	closed    bool
	stats     Stats
}

// New returns an empty Directory.
func New(cfg Config) *Directory {
	if cfg.Network == "" {
		cfg.Network = "darkmatter"
	}
	defaults.Set(&cfg.MaxRelays, DefaultMaxRelays)
	defaults.Set(&cfg.AnswerWindow, DefaultAnswerWindow)
	defaults.Set(&cfg.MaxAnswers, DefaultMaxAnswers)
	defaults.Set(&cfg.AnswerTimeout, DefaultAnswerTimeout)
	defaults.Set(&cfg.GetInterval, DefaultGetInterval)
	defaults.Set(&cfg.GetBurst, DefaultGetBurst)
	cfg.Admission.setDefaults()
	cfg.Gossip.setDefaults(cfg.MaxRelays)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Parse == nil {
		cfg.Parse = descriptor.Parse
	}
	return &Directory{
		network:       cfg.Network,
		maxRelays:     cfg.MaxRelays,
		window:        cfg.AnswerWindow,
		maxAnswers:    cfg.MaxAnswers,
		answerTimeout: cfg.AnswerTimeout,
		getInterval:   cfg.GetInterval,
		getBurst:      cfg.GetBurst,
		adm:           cfg.Admission,
		gossip:        cfg.Gossip,
		now:           cfg.Now,
		parse:         cfg.Parse,
		done:          make(chan struct{}),
		relays:        make(map[keys.NodeID]*entry),
		groups:        make(map[string]int),
		sources:       make(map[string]int),
		chosen:        make(map[string]bool),
		refused:       make(map[keys.NodeID]int64),
		syncs:         make(map[Peer]*session),
		fetches:       make(map[Peer]*fetch),
		peers:         make(map[Peer]*peerState),
	}
}

// Config returns the directory's configuration with the defaults filled
// in (Now and Parse are left out).
func (dir *Directory) Config() Config {
	return Config{
		Network: dir.network, MaxRelays: dir.maxRelays, AnswerWindow: dir.window,
		MaxAnswers: dir.maxAnswers, AnswerTimeout: dir.answerTimeout,
		GetInterval: dir.getInterval, GetBurst: dir.getBurst,
		Admission: dir.adm, Gossip: dir.gossip,
	}
}

// Close ends every Fetch (ErrClosed) and answer in flight and waits for
// the goroutine that paces answers. The directory still answers Get, List
// and Add. Close can be called more than once.
func (dir *Directory) Close() error {
	dir.mu.Lock()
	if dir.closed {
		dir.mu.Unlock()
		return nil
	}
	dir.closed = true
	for p, f := range dir.fetches {
		dir.finishLocked(p, f, ErrClosed)
	}
	for p, s := range dir.syncs {
		dir.endSyncLocked(p, s, ErrClosed)
	}
	dir.wanting = 0
	clear(dir.peers)
	dir.answering = 0
	clear(dir.pending)
	dir.pending = nil
	close(dir.done)
	dir.mu.Unlock()
	dir.wg.Wait()
	return nil
}

// Stats returns the directory's gauges and counters.
func (dir *Directory) Stats() Stats {
	dir.mu.Lock()
	defer dir.mu.Unlock()
	st := dir.stats
	st.Relays = len(dir.relays)
	st.Fetches = len(dir.fetches)
	st.Peers = len(dir.peers)
	st.Answering = dir.answering
	st.Syncing = len(dir.syncs)
	return st
}

// Add keeps d if it belongs to this network, is fresh now and was published
// later than the descriptor held for the same relay, and reports whether it
// did. It is for trusted input, the node's own descriptor above all: no
// subnet cap or source limit applies, and the relay counts as confirmed.
// A full directory takes it only in place of an entry it may evict (see
// Admission). d must come from descriptor.Parse (signature checked) and
// must not be modified afterwards. Input learned from peers goes through
// AddFrom.
func (dir *Directory) Add(d *descriptor.Descriptor) bool {
	ok, _ := dir.admit(d, "", true)
	return ok
}

// Get returns the descriptor of relay id, or nil if it is unknown or no
// longer fresh.
func (dir *Directory) Get(id keys.NodeID) *descriptor.Descriptor {
	now := dir.now()
	dir.mu.Lock()
	defer dir.mu.Unlock()
	e := dir.relays[id]
	if e == nil {
		return nil
	}
	if e.d.Expired(now) {
		dir.removeLocked(id, e)
		return nil
	}
	return e.d
}

// List returns every fresh descriptor, in no particular order, and forgets
// the ones that have expired.
func (dir *Directory) List() []*descriptor.Descriptor {
	dir.mu.Lock()
	defer dir.mu.Unlock()
	out := make([]*descriptor.Descriptor, 0, len(dir.relays))
	dir.eachFreshLocked(func(e *entry) { out = append(out, e.d) })
	return out
}

// Entry is a fresh relay descriptor with what the directory knows of the
// relay.
type Entry struct {
	Desc *descriptor.Descriptor
	Info Info
}

// Entries is List with each relay's Info, under one lock (path selection
// asks for both for every relay).
func (dir *Directory) Entries() []Entry {
	dir.mu.Lock()
	defer dir.mu.Unlock()
	out := make([]Entry, 0, len(dir.relays))
	dir.eachFreshLocked(func(e *entry) { out = append(out, Entry{e.d, e.info()}) })
	return out
}

// eachFreshLocked calls f for every entry whose descriptor is fresh, and
// forgets the expired ones. dir.mu must be held.
func (dir *Directory) eachFreshLocked(f func(*entry)) {
	now := dir.now()
	for id, e := range dir.relays {
		if e.d.Expired(now) {
			dir.removeLocked(id, e)
			continue
		}
		f(e)
	}
}

// snapshotLocked returns the relays as a list that answers share and
// nobody modifies, made again only after the directory changed (an answer
// skips the descriptors that expire meanwhile). dir.mu must be held.
func (dir *Directory) snapshotLocked() []*descriptor.Descriptor {
	if dir.snap == nil {
		dir.snap = make([]*descriptor.Descriptor, 0, len(dir.relays))
		for _, e := range dir.relays {
			dir.snap = append(dir.snap, e.d)
		}
	}
	return dir.snap
}

// Len returns how many relays the directory holds, counting ones that
// expired since the last List or Get.
func (dir *Directory) Len() int {
	dir.mu.Lock()
	defer dir.mu.Unlock()
	return len(dir.relays)
}
