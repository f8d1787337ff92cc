package circuit

import "github.com/darkmatter/darkmatter/circuit/cell"

// SetForwardHook installs a function every forwarded (client → exit) cell
// passes through after this relay removed its layer: a malicious relay.
func (s *Switch) SetForwardHook(f func(*cell.Cell)) { s.forwardHook = f }
