package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// SocketName is the control socket's file name in the data directory.
const SocketName = "control.sock"

// Bounds of the protocol (see the package documentation).
const (
	MaxRequest   = 4096
	MaxResponse  = 1 << 20
	MaxConns     = 8
	ReadTimeout  = 5 * time.Second
	WriteTimeout = 5 * time.Second
)

// CmdStatus is the status command.
const CmdStatus = "status"

// ErrInUse is returned by Listen when a live node holds the socket.
var ErrInUse = errors.New("control: another running node uses this data directory")

// Request is a control request.
type Request struct {
	Cmd    string `json:"cmd"`
	Paths  bool   `json:"paths,omitempty"`
	Unsafe bool   `json:"unsafe,omitempty"`
}

// Response is a control response: Status, or Error.
type Response struct {
	Status *Status `json:"status,omitempty"`
	Error  string  `json:"error,omitempty"`
}

// Status is what a node reports.
type Status struct {
	// Role is "relay", "exit relay", "proxy" or "testnet".
	Role string `json:"role"`
	// Bootstrap is the bootstrap progress, 0 to 100, and its last message.
	Bootstrap    int    `json:"bootstrap"`
	BootstrapMsg string `json:"bootstrap_msg,omitempty"`
	// Relays is the number of relays in the node's directory.
	Relays int `json:"relays"`
	// Guards are the client's guards (redacted IDs unless unsafe).
	Guards []string `json:"guards"`
	// Links is the number of open links.
	Links int `json:"links"`
	// Circuits are the client's open circuits.
	Circuits []Circuit `json:"circuits"`
	// CircuitEnds is the number of circuits peers opened at this relay.
	CircuitEnds int `json:"circuit_ends"`
	// Limits are the resource limits in force (spec/limits.md), in order.
	Limits []Value `json:"limits"`
	// Counters are gauges and counters from the node, in order.
	Counters []Value `json:"counters"`
}

// Circuit is one open client circuit.
type Circuit struct {
	Hops    int      `json:"hops"`
	Streams int      `json:"streams"`
	Age     string   `json:"age"`
	Path    []string `json:"path,omitempty"` // only when asked (Request.Paths)
}

// Value is a named limit or counter, printed as is.
type Value struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// RedactID cuts a hex node ID to its first 4 digits, or returns it whole
// when unsafe.
func RedactID(id string, unsafe bool) string {
	if unsafe || len(id) <= 4 {
		return id
	}
	return id[:4] + "…"
}

// DecodeRequest parses one request: a single JSON object of known fields
// with a known cmd, at most MaxRequest bytes, optionally followed by
// white space.
func DecodeRequest(b []byte) (Request, error) {
	var r Request
	if len(b) > MaxRequest {
		return r, fmt.Errorf("control: request over %d bytes", MaxRequest)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&r); err != nil {
		return Request{}, fmt.Errorf("control: bad request: %w", err)
	}
	if _, err := d.Token(); err != io.EOF {
		return Request{}, errors.New("control: data after the request")
	}
	switch r.Cmd {
	case CmdStatus:
	case "":
		return Request{}, errors.New("control: request without cmd")
	default:
		return Request{}, fmt.Errorf("control: unknown cmd %q", r.Cmd)
	}
	return r, nil
}

// Handler answers a request.
type Handler func(Request) (*Status, error)

// Server serves a control socket.
type Server struct {
	// ReadTimeout and WriteTimeout bound a connection (defaults
	// ReadTimeout, WriteTimeout).
	ReadTimeout, WriteTimeout time.Duration
	// Handler answers status requests.
	Handler Handler

	ln    net.Listener
	path  string
	slots chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
}

// Listen creates the control socket in dir (see the package documentation)
// and serves it with h until Close.
func Listen(dir string, h Handler) (*Server, error) {
	path, err := prepare(dir)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	// The directory is the owner's only (checked above), so nobody else
	// can reach the socket in the instant before the chmod.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control: %w", err)
	}
	s := &Server{Handler: h}
	s.start(ln, path)
	return s, nil
}

// Path returns the socket's path.
func (s *Server) Path() string { return s.path }

func (s *Server) start(ln net.Listener, path string) {
	s.ln, s.path = ln, path
	s.slots = make(chan struct{}, MaxConns)
	s.wg.Add(1)
	go s.acceptLoop()
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// A transient accept error (out of descriptors): wait a
			// little rather than spin.
			time.Sleep(50 * time.Millisecond)
			continue
		}
		select {
		case s.slots <- struct{}{}:
		default:
			c.Close()
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-s.slots }()
			s.ServeConn(c)
		}()
	}
}

// ServeConn answers one request on c and closes it.
func (s *Server) ServeConn(c net.Conn) {
	defer c.Close()
	rt, wt := s.ReadTimeout, s.WriteTimeout
	if rt <= 0 {
		rt = ReadTimeout
	}
	if wt <= 0 {
		wt = WriteTimeout
	}
	if err := c.SetReadDeadline(time.Now().Add(rt)); err != nil {
		return
	}
	var resp Response
	line, err := readLine(c, MaxRequest)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, io.EOF) {
			return
		}
		resp.Error = err.Error()
	} else if req, err := DecodeRequest(line); err != nil {
		resp.Error = err.Error()
	} else if st, err := s.Handler(req); err != nil {
		resp.Error = err.Error()
	} else {
		resp.Status = st
	}
	b, err := json.Marshal(resp)
	if err != nil {
		return
	}
	if err := c.SetWriteDeadline(time.Now().Add(wt)); err != nil {
		return
	}
	_, _ = c.Write(append(b, '\n'))
}

// readLine reads up to and excluding a newline, at most max bytes; the
// line may also end at EOF.
func readLine(r io.Reader, max int) ([]byte, error) {
	var buf []byte
	tmp := make([]byte, 512)
	for {
		n, err := r.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			if i > max {
				return nil, fmt.Errorf("control: request over %d bytes", max)
			}
			return buf[:i], nil
		}
		if len(buf) > max {
			return nil, fmt.Errorf("control: request over %d bytes", max)
		}
		if err == io.EOF && len(buf) > 0 {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// Close stops the server, waits for its connections and removes the socket.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		err = s.ln.Close()
		s.wg.Wait()
	})
	return err
}

// Query sends req to the node whose data directory is dir and returns its
// status.
func Query(ctx context.Context, dir string, req Request) (*Status, error) {
	path := filepath.Join(dir, SocketName)
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("control: no node running with data directory %s: %w", dir, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	} else {
		_ = c.SetDeadline(time.Now().Add(ReadTimeout + WriteTimeout))
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	line, err := readLine(c, MaxResponse)
	if err != nil {
		return nil, fmt.Errorf("control: reading the answer: %w", err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, fmt.Errorf("control: bad answer: %w", err)
	}
	if resp.Error != "" {
		return nil, errors.New(resp.Error)
	}
	if resp.Status == nil {
		return nil, errors.New("control: empty answer")
	}
	return resp.Status, nil
}

// prepare checks (or creates) dir and clears a stale socket in it, and
// returns the socket's path.
func prepare(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("control: %w", err)
	}
	if err := checkDir(dir); err != nil {
		return "", err
	}
	path := filepath.Join(dir, SocketName)
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return path, nil
	}
	if err != nil {
		return "", fmt.Errorf("control: %w", err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return "", fmt.Errorf("control: %s exists and is not a socket; not removing it", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return "", fmt.Errorf("%w (%s is live)", ErrInUse, path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return "", fmt.Errorf("control: %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("control: removing stale %s: %w", path, err)
	}
	return path, nil
}

// checkDir refuses a directory that is not the current user's own or that
// group or others can write.
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("control: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("control: data directory %s is not a directory", dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("control: data directory %s belongs to another user", dir)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("control: data directory %s is writable by group or others (mode %o); chmod go-w it", dir, fi.Mode().Perm())
	}
	return nil
}
