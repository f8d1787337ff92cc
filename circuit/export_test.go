package circuit

import "github.com/darkmatter/darkmatter/circuit/cell"

// SetForwardHook installs a function every forwarded (client → exit) cell
// passes through after this relay removed its layer: a malicious relay.
func (s *Switch) SetForwardHook(f func(*cell.Cell)) { s.forwardHook = f }

// originateToClients makes this relay send a relay message to the client
// of every circuit it ends (a newer relay's command, in tests).
func (s *Switch) originateToClients(cmd cell.RelayCmd, data []byte) int {
	n := 0
	for _, rc := range s.relayCircuits() {
		rc.mu.Lock()
		end := rc.next == nil && rc.layer != nil
		rc.mu.Unlock()
		if end && rc.originate(cmd, 0, data) == nil {
			n++
		}
	}
	return n
}

// killAll makes this relay destroy every circuit peers opened at it with
// reason, towards both sides: a hop originating any DESTROY reason.
func (s *Switch) killAll(reason byte) {
	for _, rc := range s.relayCircuits() {
		rc.destroy(reason, true, true)
	}
}

// relayCircuits returns the circuits peers opened at this relay.
func (s *Switch) relayCircuits() []*relayCirc {
	s.mu.Lock()
	defer s.mu.Unlock()
	var rcs []*relayCirc
	for _, t := range s.chans {
		for _, ep := range t.circs {
			if pe, ok := ep.(prevEnd); ok {
				rcs = append(rcs, pe.c)
			}
		}
	}
	return rcs
}
