package cell

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/darkmatter/darkmatter/crypto/layer"
)

// Specification constants (spec/cells.md §1). The size was chosen by
// benchmark (spec/cells.md §5).
const (
	// HeaderLen is the size of the circuit ID and command.
	HeaderLen = 5
	// BodyLen is the size of a cell body: 255 blocks of 16 bytes.
	BodyLen = 4080
	// Size is the size of every cell on a link.
	Size = HeaderLen + BodyLen
	// MessageLen is the room for a relay message in a RELAY cell.
	MessageLen = BodyLen - layer.HeaderSize
	// RelayHeaderLen is the size of a relay message header.
	RelayHeaderLen = 5
	// MaxData is the most data one relay message carries.
	MaxData = MessageLen - RelayHeaderLen
)

// Command is a cell command.
type Command uint8

// Cell commands. Circuit ID 0 is reserved for link-level commands.
const (
	CmdPadding Command = 0  // link keepalive; ignored
	CmdCreate  Command = 1  // body: handshake length (2) | client handshake
	CmdCreated Command = 2  // body: handshake length (2) | relay handshake
	CmdRelay   Command = 3  // body: onion-encrypted relay message
	CmdDestroy Command = 4  // body: reason (1)
	CmdHello   Command = 5  // circ 0; body: length (2) | descriptor (or empty)
	CmdDirGet  Command = 6  // circ 0; empty body: request all known descriptors
	CmdDirDesc Command = 7  // circ 0; body: length (2) | descriptor
	CmdDirDone Command = 8  // circ 0; end of a directory answer
	CmdRekey   Command = 9  // circ 0; empty body; the last cell of a link message before the sender rekeys (spec/links.md §5)
	CmdGossip  Command = 10 // circ 0; body: a gossip message (spec/gossip.md); only to peers with Dir=3
	CmdDHT     Command = 11 // circ 0; body: a DHT message fragment (spec/dht.md); only to peers with DHT=1
	CmdNAT     Command = 12 // circ 0; body: a relayed-link or punch message (spec/nat.md §8); only to peers with Hop=1 or Punch=1
	CmdMove    Command = 13 // circ 0; empty body; the last cell on a link's old connection (spec/links.md §5.4); only to peers with LinkMove=1
	maxCommand         = CmdMove
)

func (c Command) String() string {
	switch c {
	case CmdPadding:
		return "PADDING"
	case CmdCreate:
		return "CREATE"
	case CmdCreated:
		return "CREATED"
	case CmdRelay:
		return "RELAY"
	case CmdDestroy:
		return "DESTROY"
	case CmdHello:
		return "HELLO"
	case CmdDirGet:
		return "DIR_GET"
	case CmdDirDesc:
		return "DIR_DESC"
	case CmdDirDone:
		return "DIR_DONE"
	case CmdRekey:
		return "REKEY"
	case CmdGossip:
		return "GOSSIP"
	case CmdDHT:
		return "DHT"
	case CmdNAT:
		return "NAT"
	case CmdMove:
		return "MOVE"
	}
	return fmt.Sprintf("CMD(%d)", uint8(c))
}

// Destroy reasons (one byte in a DESTROY body, spec/cells.md §2.3).
const (
	DestroyNone         byte = 0 // requested by the client
	DestroyProtocol     byte = 1 // malformed cell or message
	DestroyAuth         byte = 2 // a layer failed authentication (tampering)
	DestroyLinkClosed   byte = 3 // a link of the circuit went down
	DestroyExtendFailed byte = 4 // the next hop could not be reached
	DestroyResource     byte = 5 // a resource limit of the sender
	DestroyHandshake    byte = 6 // the circuit handshake failed or was a replay
	DestroyShutdown     byte = 7 // the relay is shutting down
	// DestroyDestroyed is what a relay passes on when it receives a
	// DESTROY from one side: a node beyond it closed the circuit. The
	// received reason is never passed on, so hops cannot signal each
	// other through it.
	DestroyDestroyed byte = 8
	// DestroyExtendRefused means the hop refused to extend to the relay
	// and address asked for (its extend rules), without dialling.
	DestroyExtendRefused byte = 9
)

var (
	// ErrShort means a buffer is not one whole cell.
	ErrShort = errors.New("cell: not a whole cell")
	// ErrCommand means an unknown cell command.
	ErrCommand = errors.New("cell: unknown command")
	errLength  = errors.New("cell: bad length field")
)

// Cell is one cell. Buf holds the wire bytes plus layer.Spare bytes of
// capacity that the layer crypto needs. Get cells from New and give them back
// with Free once they are sent or dropped.
type Cell struct {
	Buf [Size + layer.Spare]byte
}

var pool = sync.Pool{New: func() any { return new(Cell) }}

// New returns a zeroed cell from the pool.
func New(circ uint32, cmd Command) *Cell {
	c := pool.Get().(*Cell)
	clear(c.Buf[:])
	c.SetCirc(circ)
	c.Buf[4] = byte(cmd)
	return c
}

// Free returns c to the pool. c must not be used afterwards.
func (c *Cell) Free() { pool.Put(c) }

// Bytes returns the wire bytes.
func (c *Cell) Bytes() []byte { return c.Buf[:Size] }

// Circ returns the circuit ID.
func (c *Cell) Circ() uint32 { return binary.BigEndian.Uint32(c.Buf[:4]) }

// SetCirc sets the circuit ID.
func (c *Cell) SetCirc(id uint32) { binary.BigEndian.PutUint32(c.Buf[:4], id) }

// Cmd returns the command.
func (c *Cell) Cmd() Command { return Command(c.Buf[4]) }

// Body returns the body with layer.Spare bytes of spare capacity.
func (c *Cell) Body() []byte { return c.Buf[HeaderLen:Size:len(c.Buf)] }

// Parse copies one wire cell from b into a pooled Cell and checks its
// command.
func Parse(b []byte) (*Cell, error) {
	if len(b) != Size {
		return nil, ErrShort
	}
	if Command(b[4]) > maxCommand {
		return nil, fmt.Errorf("%w %d", ErrCommand, b[4])
	}
	c := pool.Get().(*Cell)
	copy(c.Buf[:Size], b)
	clear(c.Buf[Size:])
	return c, nil
}

// SetPayload writes a length-prefixed payload (CREATE, CREATED, HELLO,
// DIR_DESC bodies).
func (c *Cell) SetPayload(p []byte) error {
	if len(p) > BodyLen-2 {
		return errLength
	}
	body := c.Body()
	binary.BigEndian.PutUint16(body, uint16(len(p)))
	copy(body[2:], p)
	return nil
}

// Payload returns the length-prefixed payload of the body.
func (c *Cell) Payload() ([]byte, error) {
	body := c.Body()
	n := int(binary.BigEndian.Uint16(body))
	if n > BodyLen-2 {
		return nil, errLength
	}
	return body[2 : 2+n], nil
}
