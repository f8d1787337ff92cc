package circuit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/circuit/protover"
	"github.com/darkmatter/darkmatter/crypto/keys"
)

// introRole is what a client circuit does at an introduction point.
type introRole uint8

const (
	roleNone    introRole = iota
	roleService           // sent ESTABLISH_INTRO: a service's intro circuit
	roleClient            // sent INTRODUCE1
)

// introState is a client circuit's introduction state; ClientCirc.mu
// guards it.
type introState struct {
	role        introRole
	established chan struct{} // INTRO_ESTABLISHED arrived (roleService)
	up          bool
	onIntroduce func(body []byte)
	ack         chan byte // INTRODUCE_ACK's status (introClient)
	acked       bool
}

var errIntroUsed = errors.New("circuit: the circuit was already used at an introduction point")

// canIntro checks that cc may be used at an introduction point: its last
// hop lists Intro=1 (when its protocols are known) and the circuit carries
// no streams and is not joined.
func (cc *ClientCirc) canIntro() error {
	if last := cc.hops[len(cc.hops)-1].Protocols; !last.IsEmpty() && !last.Supports(protover.Intro, 1) {
		return errors.New("circuit: the last hop is no introduction point")
	}
	if cc.numStreams() > 0 {
		return errors.New("circuit: a circuit with streams cannot be used at an introduction point")
	}
	cc.mu.Lock()
	joint := cc.onJoined != nil
	cc.mu.Unlock()
	cc.edge.mu.Lock()
	joined := cc.edge.e2e != nil
	cc.edge.mu.Unlock()
	if joint || joined {
		return errors.New("circuit: a joint circuit cannot be used at an introduction point")
	}
	return nil
}

// EstablishIntro makes the circuit's last hop an introduction point for
// the public half of auth (spec/circuits.md §9): it sends ESTABLISH_INTRO
// signed by auth for intro (the last hop's NodeID) in network, asking for
// rate INTRODUCE2 per second and bursts of burst (0: the hop's defaults;
// the hop caps both), and returns once INTRO_ESTABLISHED arrived. The last
// hop must list Intro=1 when its protocols are known.
//
// onIntroduce runs on the circuit's reader goroutine with the body of each
// INTRODUCE2 (auth key (32) ‖ encrypted part), which is valid only during
// the call: it must copy what it keeps and return quickly (queue the work
// elsewhere), since the reader carries every cell of the circuit's link.
func (cc *ClientCirc) EstablishIntro(ctx context.Context, auth ed25519.PrivateKey, network string, intro keys.NodeID, rate, burst uint16, onIntroduce func(body []byte)) error {
	if onIntroduce == nil {
		return errors.New("circuit: EstablishIntro needs an onIntroduce function")
	}
	if len(auth) != ed25519.PrivateKeySize {
		return errors.New("circuit: bad intro auth key")
	}
	if len(network) > 255 {
		return errors.New("circuit: network name longer than 255 bytes")
	}
	if err := cc.canIntro(); err != nil {
		return err
	}
	established := make(chan struct{}, 1)
	cc.mu.Lock()
	if cc.intro.role != roleNone {
		cc.mu.Unlock()
		return errIntroUsed
	}
	cc.intro = introState{role: roleService, established: established, onIntroduce: onIntroduce}
	cc.mu.Unlock()
	body := marshalEstablishIntro(auth, network, intro, rate, burst)
	if err := cc.sendTo(len(cc.hops)-1, cell.RelayEstablishIntro, 0, body, nil); err != nil {
		return err
	}
	return cc.wait(ctx, established)
}

// Introduce sends INTRODUCE1 (authKey ‖ encrypted) to the last hop, an
// introduction point, and waits for its INTRODUCE_ACK. It returns the
// status: IntroStatusPassed (0, passed on to the service),
// IntroStatusUnknown (1, no intro circuit for authKey), IntroStatusLimited
// (2, dropped by a rate limit), IntroStatusMalformed (3), or a value a
// newer relay defines. An error means no answer: the context ended or the
// circuit died. A circuit carries one INTRODUCE1; try again on another.
func (cc *ClientCirc) Introduce(ctx context.Context, authKey [32]byte, encrypted []byte) (status byte, err error) {
	if len(encrypted) == 0 || len(encrypted) > MaxIntroduceEncrypted {
		return 0, fmt.Errorf("circuit: INTRODUCE1 encrypted part of %d bytes (1..%d)", len(encrypted), MaxIntroduceEncrypted)
	}
	if err := cc.canIntro(); err != nil {
		return 0, err
	}
	ack := make(chan byte, 1)
	cc.mu.Lock()
	if cc.intro.role != roleNone {
		cc.mu.Unlock()
		return 0, errIntroUsed
	}
	cc.intro = introState{role: roleClient, ack: ack}
	cc.mu.Unlock()
	body := make([]byte, 0, IntroAuthKeyLen+len(encrypted))
	body = append(append(body, authKey[:]...), encrypted...)
	if err := cc.sendTo(len(cc.hops)-1, cell.RelayIntroduce1, 0, body, nil); err != nil {
		return 0, err
	}
	select {
	case s := <-ack:
		return s, nil
	case <-cc.done:
		return 0, cc.Err()
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// introMessage handles INTRO_ESTABLISHED, INTRODUCE2 and INTRODUCE_ACK from
// the last hop, on the reader goroutine; m.Data is valid until it returns.
// An error destroys the circuit.
func (cc *ClientCirc) introMessage(m cell.RelayMsg) error {
	if m.Stream != 0 {
		return errProtocol
	}
	cc.mu.Lock()
	st := &cc.intro
	switch m.Cmd {
	case cell.RelayIntroEstablished:
		if st.role != roleService || st.up || len(m.Data) != 0 {
			break
		}
		st.up = true
		ch := st.established
		cc.mu.Unlock()
		ch <- struct{}{} // buffered, sent once
		return nil
	case cell.RelayIntroduce2:
		if st.role != roleService || !st.up {
			break
		}
		f := st.onIntroduce
		cc.mu.Unlock()
		f(m.Data)
		return nil
	case cell.RelayIntroduceAck:
		if st.role != roleClient || st.acked || len(m.Data) != 1 {
			break
		}
		st.acked = true
		ch := st.ack
		cc.mu.Unlock()
		ch <- m.Data[0] // buffered, sent once
		return nil
	}
	cc.mu.Unlock()
	return errProtocol
}

// KeepAlive sends DROP to the last hop, which every hop counts as
// traffic: a quiet circuit that must outlive the relays' idle timeout
// (1 h by default, spec/circuits.md §5.4), such as a service's intro
// circuit, sends it more often than that.
func (cc *ClientCirc) KeepAlive() error {
	return cc.sendTo(len(cc.hops)-1, cell.RelayDrop, 0, nil, nil)
}
