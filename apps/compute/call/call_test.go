package call

import (
	"bytes"
	"errors"
	"io"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleCall() *Call {
	inner := &Call{Module: [32]byte{2}, Function: "render", Depth: 1, Budget: 3, Timeout: time.Second,
		Input: Input{Kind: InputBlob, Blob: [32]byte{9, 9}}}
	return &Call{Module: [32]byte{1}, Function: "count_words", Flags: FlagOffer, Depth: 4, Budget: 256,
		Timeout: 30 * time.Second, Input: Input{Kind: InputCall, Call: inner}}
}

func TestCallRoundTrip(t *testing.T) {
	for _, c := range []*Call{
		sampleCall(),
		{Module: [32]byte{7}, Function: "f", Budget: 1, Timeout: time.Millisecond, Input: Literal(nil)},
		{Module: [32]byte{7}, Function: "f", Budget: 65535, Timeout: time.Hour, Manifest: bytes.Repeat([]byte{1}, 160), Input: Literal([]byte("hello"))},
	} {
		b, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		if got.Input.Kind == InputLiteral && len(got.Input.Literal) == 0 {
			got.Input.Literal = c.Input.Literal
		}
		if !reflect.DeepEqual(got, c) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, c)
		}
		again, _ := got.Marshal()
		if !bytes.Equal(again, b) {
			t.Error("re-encoding differs: the encoding must be canonical")
		}
	}
}

func TestCallRefused(t *testing.T) {
	ok := func() *Call { return &Call{Module: [32]byte{1}, Function: "f", Budget: 1, Timeout: time.Second} }
	for name, mut := range map[string]func(*Call){
		"empty function":    func(c *Call) { c.Function = "" },
		"bad function byte": func(c *Call) { c.Function = "a-b" },
		"long function":     func(c *Call) { c.Function = strings.Repeat("a", 65) },
		"unknown flag":      func(c *Call) { c.Flags = 2 },
		"deep":              func(c *Call) { c.Depth = MaxDepth + 1 },
		"no budget":         func(c *Call) { c.Budget = 0 },
		"no timeout":        func(c *Call) { c.Timeout = 0 },
		"long timeout":      func(c *Call) { c.Timeout = time.Hour + time.Millisecond },
		"sub-ms timeout":    func(c *Call) { c.Timeout = 1500 * time.Microsecond },
		"short manifest":    func(c *Call) { c.Manifest = make([]byte, 10) },
		"big literal":       func(c *Call) { c.Input = Literal(make([]byte, MaxInput+1)) },
		"unknown input":     func(c *Call) { c.Input.Kind = 3 },
		"nil call input":    func(c *Call) { c.Input = Input{Kind: InputCall} },
		"nested too deep": func(c *Call) {
			for range MaxNesting + 1 {
				inner := *c
				c.Input = Input{Kind: InputCall, Call: &inner}
			}
		},
	} {
		c := ok()
		mut(c)
		if _, err := c.Marshal(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Marshal = %v, want ErrMalformed", name, err)
		}
	}
}

func TestParseRefused(t *testing.T) {
	good, err := sampleCall().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for i := range good {
		if _, err := Parse(good[:i]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("truncated at %d: %v", i, err)
		}
	}
	if _, err := Parse(append(good, 0)); !errors.Is(err, ErrMalformed) {
		t.Error("trailing byte accepted")
	}
	bad := bytes.Clone(good)
	bad[0] = 2
	if _, err := Parse(bad); !errors.Is(err, ErrMalformed) {
		t.Error("version 2 accepted")
	}
	// A literal length beyond MaxInput is refused before anything is
	// allocated.
	c := &Call{Module: [32]byte{1}, Function: "f", Budget: 1, Timeout: time.Second}
	b, _ := c.Marshal()
	b = b[:len(b)-4]
	b = append(b, 0xff, 0xff, 0xff, 0xff)
	if _, err := Parse(b); err == nil || !strings.Contains(err.Error(), "literal input") {
		t.Errorf("huge literal length: %v", err)
	}
}

func TestResultRoundTrip(t *testing.T) {
	for _, r := range []*Result{
		{Status: OK, Used: 5, Output: []byte("42")},
		{Status: OK, Used: 1},
		{Status: Limit, Used: 9, Reason: "sub-call depth limit reached"},
		{Status: Busy, Reason: strings.Repeat("é", 400)},
	} {
		b, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseResult(b)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != r.Status || got.Used != r.Used || !bytes.Equal(got.Output, r.Output) || got.Reason != CutReason(r.Reason) {
			t.Errorf("round trip %+v -> %+v", r, got)
		}
		if len(got.Reason) > MaxReason {
			t.Errorf("reason of %d bytes", len(got.Reason))
		}
	}
	if err := (&Result{Status: Trap, Reason: "boom"}).Err(); err == nil || !strings.Contains(err.Error(), "trap: boom") {
		t.Errorf("Err = %v", err)
	}
	if st, ok := StatusOf((&Result{Status: Busy}).Err()); !ok || st != Busy {
		t.Error("StatusOf")
	}
	for _, b := range [][]byte{nil, {0, 0, 0, 0, 0, 0, 1}, {1, 0, 0, 0, 0, 0, 1, 0xff}, {1, 0, 0, 0, 0, 2, 1, 0}} {
		if _, err := ParseResult(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseResult(%x) = %v", b, err)
		}
	}
}

func TestCutReason(t *testing.T) {
	if got := CutReason("a\xffb"); got != "a\uFFFDb" {
		t.Errorf("invalid UTF-8 -> %q", got)
	}
	long := strings.Repeat("€", 200) // 600 bytes
	if got := CutReason(long); len(got) > MaxReason || !strings.HasPrefix(long, got) {
		t.Errorf("cut to %d bytes", len(got))
	}
}

func TestReadFrameBounds(t *testing.T) {
	var b bytes.Buffer
	if err := WriteFrame(&b, FrameResult, []byte{0, 0, 1, 0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadFrame(bytes.NewReader(b.Bytes()), 0, FrameCall); !errors.Is(err, ErrMalformed) {
		t.Errorf("unexpected type accepted: %v", err)
	}
	// A header that announces more than the type allows is refused before
	// the body is read (or allocated).
	huge := []byte{byte(FrameCall), 0xff, 0xff, 0xff, 0xff}
	if _, _, err := ReadFrame(bytes.NewReader(huge), 0, FrameCall); !errors.Is(err, ErrMalformed) {
		t.Errorf("huge CALL: %v", err)
	}
	need := []byte{byte(FrameNeed), 0, 0, 0, 1, 0}
	if _, _, err := ReadFrame(bytes.NewReader(need), 0, FrameNeed); !errors.Is(err, ErrMalformed) {
		t.Errorf("NEED with a body: %v", err)
	}
	mod := []byte{byte(FrameModule), 0, 0, 1, 0}
	if _, _, err := ReadFrame(bytes.NewReader(mod), 100, FrameModule); !errors.Is(err, ErrMalformed) {
		t.Errorf("MODULE over the caller's limit: %v", err)
	}
	short := []byte{byte(FrameModule), 0, 0, 0, 5, 1}
	if _, _, err := ReadFrame(bytes.NewReader(short), 0, FrameModule); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short body: %v", err)
	}
	if err := WriteFrame(io.Discard, FrameNeed, []byte{1}); !errors.Is(err, ErrMalformed) {
		t.Errorf("WriteFrame NEED with a body: %v", err)
	}
}

// Do sends the module when asked, and only then; an executor that asks
// for a module not offered breaks the protocol.
func TestDo(t *testing.T) {
	code := []byte("\x00asm module bytes")
	c := &Call{Module: [32]byte{1}, Function: "f", Budget: 1, Timeout: time.Second, Input: Literal([]byte("in"))}
	for _, tc := range []struct {
		name  string
		code  []byte
		need  bool
		fails bool
	}{
		{"no need", nil, false, false},
		{"need, offered", code, true, false},
		{"need, not offered", nil, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := net.Pipe()
			defer a.Close()
			done := make(chan error, 1)
			go func() {
				defer b.Close()
				_, body, err := ReadFrame(b, 0, FrameCall)
				if err != nil {
					done <- err
					return
				}
				got, err := Parse(body)
				if err != nil {
					done <- err
					return
				}
				if (got.Flags&FlagOffer != 0) != (tc.code != nil) {
					done <- errors.New("offer flag wrong")
					return
				}
				if tc.need {
					if err := WriteFrame(b, FrameNeed, nil); err != nil {
						done <- err
						return
					}
					if tc.code == nil {
						done <- nil
						return
					}
					_, m, err := ReadFrame(b, 0, FrameModule)
					if err != nil || !bytes.Equal(m, code) {
						done <- errors.New("module not sent")
						return
					}
				}
				res, _ := (&Result{Status: OK, Used: 1, Output: []byte("out")}).Marshal()
				done <- WriteFrame(b, FrameResult, res)
			}()
			res, err := Do(a, c, tc.code)
			if srvErr := <-done; srvErr != nil {
				t.Fatal(srvErr)
			}
			if tc.fails {
				if err == nil {
					t.Fatal("a NEED for a module not offered was accepted")
				}
				return
			}
			if err != nil || string(res.Output) != "out" {
				t.Fatalf("Do = %+v, %v", res, err)
			}
		})
	}
}

// The bounds spec/compute.md §4.1 states.
func TestBounds(t *testing.T) {
	if MaxCallSize != 1070736 || MaxResultSize != 7+16777216 {
		t.Errorf("MaxCallSize %d, MaxResultSize %d", MaxCallSize, MaxResultSize)
	}
}
