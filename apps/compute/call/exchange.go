package call

import (
	"fmt"
	"io"
)

// Do makes call c over rw, a fresh BEGIN_COMPUTE stream, and returns the
// executor's RESULT (spec/compute.md §4.1): it sends the CALL and, if the
// executor answers NEED, the module bytes code. With code set, c's
// FlagOffer is set; without it, a NEED is a protocol error. To give up,
// close rw or set its deadline: Do returns the read's error.
//
// The module is written while Do reads on, so that an executor that
// refuses it part way (it does not match the manifest's size) can still
// answer; that write may then still be blocked when Do returns, until the
// caller closes rw.
func Do(rw io.ReadWriter, c *Call, code []byte) (*Result, error) {
	cc := *c
	if code != nil {
		cc.Flags |= FlagOffer
	} else {
		cc.Flags &^= FlagOffer
	}
	body, err := cc.Marshal()
	if err != nil {
		return nil, err
	}
	if err := WriteFrame(rw, FrameCall, body); err != nil {
		return nil, err
	}
	needed := false
	for {
		want := []FrameType{FrameResult, FrameNeed}
		if needed || code == nil {
			want = want[:1]
		}
		t, body, err := ReadFrame(rw, 0, want...)
		if err != nil {
			return nil, fmt.Errorf("call: reading the executor's answer: %w", err)
		}
		if t == FrameResult {
			return ParseResult(body)
		}
		needed = true
		go WriteFrame(rw, FrameModule, code) // ends when rw is closed at the latest
	}
}
