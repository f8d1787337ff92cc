package layer

// Relay is a relay's layer state for one circuit: the keys it shares with the
// client and the counters of both directions. It is not safe for concurrent
// use; a circuit processes its cells in order.
type Relay struct {
	fwd, bwd dir
}

// NewRelay returns the relay side of a hop with keys k.
func NewRelay(k *Keys) (*Relay, error) {
	r := new(Relay)
	if err := r.fwd.init(&k.Forward); err != nil {
		return nil, err
	}
	if err := r.bwd.init(&k.Backward); err != nil {
		return nil, err
	}
	return r, nil
}

// Forward removes this hop's layer from a cell body travelling away from the
// client. It returns true if the cell is addressed to this hop; its message is
// then body[:MessageSize(len(body))]. Otherwise body is ready to be sent to
// the next hop. ErrAuth means the circuit must be destroyed.
func (r *Relay) Forward(body []byte) (forMe bool, err error) {
	if err := CheckBody(body); err != nil {
		return false, err
	}
	if !r.fwd.open(body, 0) {
		return false, ErrAuth
	}
	r.fwd.ctr++
	n := len(body)
	forMe = isZero(body[slotOff(n, 1) : slotOff(n, 1)+TagSize])
	// Move slots 7..1 to 6..0 and put a zero filler in slot 7.
	m := MessageSize(n)
	copy(body[m+TagSize:], body[m:n-TagSize])
	clear(body[m : m+TagSize])
	return forMe, nil
}

// Originate seals a message this hop sends towards the client. The message
// is body[:MessageSize(len(body))]; the header is overwritten.
func (r *Relay) Originate(body []byte) error {
	if err := CheckBody(body); err != nil {
		return err
	}
	n := len(body)
	clear(body[MessageSize(n):])
	r.bwd.seal(body[:n-TagSize], 0)
	copy(body[n-TagSize:], r.bwd.marker(n))
	r.bwd.ctr++
	return nil
}

// Backward adds this hop's layer to a cell travelling towards the client.
func (r *Relay) Backward(body []byte) error {
	if err := CheckBody(body); err != nil {
		return err
	}
	r.bwd.xor(body, 0)
	r.bwd.ctr++
	return nil
}
