package layer

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"sync/atomic"
)

// Client is the client's layer state for one circuit: one key set per hop,
// hop 0 being the first. Open may run concurrently with Seal or AddHop (they
// touch different directions); Seal and AddHop must not run concurrently
// with themselves or each other.
type Client struct {
	hops [MaxHops]clientHop
	n    atomic.Int32 // hops added
	// junk fills unused header slots with pseudo-random bytes so that the
	// destination hop cannot count slots to learn its position.
	junk      cipher.Stream
	junkBlock [TagSize * Slots]byte
	lastTag   [TagSize]byte // destination hop's tag from the latest Seal
}

type clientHop struct {
	fwd, bwd dir
}

// NewClient returns a client layer state with no hops.
func NewClient() (*Client, error) {
	var key [32]byte
	var iv [16]byte
	if _, err := rand.Read(key[:]); err != nil {
		return nil, err
	}
	b, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	return &Client{junk: cipher.NewCTR(b, iv[:])}, nil
}

// Hops returns the number of hops added.
func (c *Client) Hops() int { return int(c.n.Load()) }

// AddHop appends a hop with keys k.
func (c *Client) AddHop(k *Keys) error {
	n := c.n.Load()
	if n >= MaxHops {
		return errTooManyHops
	}
	h := &c.hops[n]
	if err := h.fwd.init(&k.Forward); err != nil {
		return err
	}
	if err := h.bwd.init(&k.Backward); err != nil {
		return err
	}
	c.n.Store(n + 1)
	return nil
}

// Seal wraps the message in body[:MessageSize(len(body))] for hop target
// (0-based) so that every hop up to target can authenticate it and target
// recognises it as its own. The header is overwritten.
func (c *Client) Seal(body []byte, target int) error {
	if err := CheckBody(body); err != nil {
		return err
	}
	if target < 0 || target >= c.Hops() {
		return errTooManyHops
	}
	n := len(body)
	m := MessageSize(n)
	k := target + 1

	// Forced slots: what each hop's predecessor leaves in the far slots.
	// forced[s] is the ciphertext of slot s as hop i will see it. Hop 0 is
	// given a zero slot 7 too, as if a hop preceded it, so no hop can tell
	// its position from the header.
	var forced [Slots][TagSize]byte // slot index → value; valid for s >= Slots-i-1
	lo := Slots - 1                 // lowest forced slot at the current hop
	for i := 0; i < k-1; i++ {
		// Shift forced slots towards 0, mixing in hop i's keystream.
		for s := lo; s < Slots; s++ {
			ks := c.hops[i].fwd.keystreamBlock(slotOff(n, s), 0)
			xorInto(forced[s-1][:], forced[s][:], ks)
		}
		forced[Slots-1] = [TagSize]byte{}
		lo--
	}

	// Destination plaintext: marker in slot 1, junk in free slots, forced
	// slots chosen so their ciphertext equals the filler.
	clear(body[slotOff(n, 1) : slotOff(n, 1)+TagSize])
	if lo > 2 {
		junk := c.junkBlock[:TagSize*(lo-2)]
		clear(junk)
		c.junk.XORKeyStream(junk, junk)
		copy(body[slotOff(n, lo-1):], junk)
	}
	dst := &c.hops[target].fwd
	for s := lo; s < Slots; s++ {
		o := slotOff(n, s)
		xorInto(body[o:o+TagSize], forced[s][:], dst.keystreamBlock(o, 0))
	}
	dst.seal(body, 0)
	copy(c.lastTag[:], body[n-TagSize:])

	// Inner to outer: undo the shift each hop will do, then seal.
	for i := target - 1; i >= 0; i-- {
		copy(body[m:], body[m+TagSize:])
		c.hops[i].fwd.seal(body, 0)
	}
	for i := 0; i <= target; i++ {
		c.hops[i].fwd.ctr++
	}
	return nil
}

// LastTag returns the tag the destination hop authenticated the latest
// sealed cell with: what that hop will see in slot 0 when the cell reaches
// it. Flow control uses it to prove receipt (spec/streams.md §3).
func (c *Client) LastTag() [TagSize]byte { return c.lastTag }

// Open removes the layers of a backward cell and returns the index of the
// hop that originated it; the message is body[:MessageSize(len(body))].
// Any error means the circuit must be destroyed.
func (c *Client) Open(body []byte) (hop int, err error) {
	if err := CheckBody(body); err != nil {
		return 0, err
	}
	n := len(body)
	for i := range c.Hops() {
		h := &c.hops[i].bwd
		if subtle.ConstantTimeCompare(body[n-TagSize:], h.marker(n)) == 1 {
			if !h.open(body[:n-TagSize], 0) {
				return 0, ErrAuth
			}
			for j := 0; j <= i; j++ {
				c.hops[j].bwd.ctr++
			}
			return i, nil
		}
		h.xor(body, 0)
	}
	return 0, ErrUnrecognized
}
