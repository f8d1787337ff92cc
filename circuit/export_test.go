package circuit

import "github.com/darkmatter/darkmatter/circuit/cell"

// SetForwardHook installs a function every forwarded (client → exit) cell
// passes through after this relay removed its layer: a malicious relay.
func (s *Switch) SetForwardHook(f func(*cell.Cell)) { s.forwardHook = f }

// originateToClients makes this relay send a relay message to the client
// of every circuit it ends (a newer relay's command, in tests).
func (s *Switch) originateToClients(cmd cell.RelayCmd, data []byte) int {
	s.mu.Lock()
	var rcs []*relayCirc
	for _, t := range s.chans {
		for _, ep := range t.circs {
			if pe, ok := ep.(prevEnd); ok {
				rcs = append(rcs, pe.c)
			}
		}
	}
	s.mu.Unlock()
	n := 0
	for _, rc := range rcs {
		rc.mu.Lock()
		end := rc.next == nil && rc.layer != nil
		rc.mu.Unlock()
		if end && rc.originate(cmd, 0, data) == nil {
			n++
		}
	}
	return n
}

// SetJointHook installs a function every E2E message crossing a joint at
// this relay passes through.
func (s *Switch) SetJointHook(f func([]byte)) { s.jointHook = f }
