package keys

import "fmt"

// MaxNetworkLen is the longest network name, in bytes: its length is
// signed as one byte.
const MaxNetworkLen = 255

// CheckNetwork reports whether network can be signed for: 1..MaxNetworkLen
// bytes.
func CheckNetwork(network string) error {
	if len(network) == 0 || len(network) > MaxNetworkLen {
		return fmt.Errorf("keys: network name of %d bytes, want 1..%d", len(network), MaxNetworkLen)
	}
	return nil
}

// AppendSigned appends to b what a key signs for an object of one network:
// context ‖ len(network) (1 byte) ‖ network ‖ body. Every signed object of
// darkmatter that names its network starts so (the DHT record, the module
// and site manifests, ESTABLISH_INTRO), so a signature made for one
// network, or for one kind of object, never verifies as another. The
// network must pass CheckNetwork.
func AppendSigned(b []byte, context, network string, body []byte) []byte {
	b = append(b, context...)
	b = append(b, byte(len(network)))
	b = append(b, network...)
	return append(b, body...)
}
