// Package deadline is the settable read or write deadline of an in-memory
// conn (the design of net.Pipe's pipeDeadline), shared by the in-memory
// transport (overlay/transport/memnet) and the NAT simulator (nat/natsim):
// Set arms or clears it, Wait gives a channel closed once it has passed,
// Stop cancels its timer when the conn closes.
package deadline
