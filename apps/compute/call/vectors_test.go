package call

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/internal/testvec"
)

// vectorsFile is the JSON test vector file shared with spec/compute.md §4.
const vectorsFile = "compute-call.json"

type callVectors struct {
	Comment string     `json:"comment"`
	Call    vecCall    `json:"call"`
	Results []vecFrame `json:"results"`
}

type vecCall struct {
	Outer string `json:"outer_module"`
	Inner string `json:"inner_module"`
	Blob  string `json:"input_blob"`
	Body  string `json:"body"`
	Frame string `json:"frame"`
}

type vecFrame struct {
	Status uint8  `json:"status"`
	Used   uint16 `json:"used"`
	Text   string `json:"text"`
	Body   string `json:"body"`
	Frame  string `json:"frame"`
}

func generateCallVectors() *callVectors {
	return &callVectors{
		Comment: "darkmatter CALL and RESULT vectors (spec/compute.md §4). Hex unless noted. call: a CALL of function \"count\" " +
			"of outer_module (flags OFFER, depth 3, budget 16, timeout 20000 ms, no manifest) whose input is the output of a CALL of " +
			"function \"render\" of inner_module (flags 0, depth 2, budget 4, timeout 5000 ms) whose input is the blob input_blob; " +
			"body is the CALL body, frame the frame carrying it. results: RESULT bodies and frames; text is the output (status 0) or the " +
			"reason, as UTF-8 text. Checked by apps/compute/call TestVectors (-update rewrites this file).",
		Call: vecCall{Outer: hex.EncodeToString(testvec.Seq(0x10, 32)), Inner: hex.EncodeToString(testvec.Seq(0x30, 32)), Blob: hex.EncodeToString(testvec.Seq(0x50, 32))},
		Results: []vecFrame{
			{Status: uint8(OK), Used: 5, Text: "400"},
			{Status: uint8(Limit), Used: 7, Text: "sub-call depth limit reached"},
		},
	}
}

func TestVectors(t *testing.T) {
	v := testvec.LoadOrGenerate(t, vectorsFile, generateCallVectors)
	c := &Call{Function: "count", Flags: FlagOffer, Depth: 3, Budget: 16, Timeout: 20 * time.Second,
		Input: Input{Kind: InputCall, Call: &Call{Function: "render", Depth: 2, Budget: 4, Timeout: 5 * time.Second,
			Input: Input{Kind: InputBlob}}}}
	copy(c.Module[:], testvec.Hex(t, v.Call.Outer))
	copy(c.Input.Call.Module[:], testvec.Hex(t, v.Call.Inner))
	copy(c.Input.Call.Input.Blob[:], testvec.Hex(t, v.Call.Blob))
	body, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	testvec.CheckHex(t, "CALL body", &v.Call.Body, body)
	var fr bytes.Buffer
	if err := WriteFrame(&fr, FrameCall, body); err != nil {
		t.Fatal(err)
	}
	testvec.CheckHex(t, "CALL frame", &v.Call.Frame, fr.Bytes())
	got, err := Parse(testvec.Hex(t, v.Call.Body))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Errorf("the vector CALL parses to %+v", got)
	}
	for i := range v.Results {
		rv := &v.Results[i]
		r := &Result{Status: Status(rv.Status), Used: rv.Used}
		if r.Status == OK {
			r.Output = []byte(rv.Text)
		} else {
			r.Reason = rv.Text
		}
		b, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		testvec.CheckHex(t, "RESULT body", &rv.Body, b)
		fr.Reset()
		WriteFrame(&fr, FrameResult, b)
		testvec.CheckHex(t, "RESULT frame", &rv.Frame, fr.Bytes())
		p, err := ParseResult(testvec.Hex(t, rv.Body))
		if err != nil || p.Status != r.Status || p.Used != r.Used || string(p.Output)+p.Reason != rv.Text {
			t.Errorf("vector RESULT %d parses to %+v, %v", i, p, err)
		}
	}
	if testvec.Update() && !t.Failed() {
		testvec.Save(t, vectorsFile, v)
	}
}
