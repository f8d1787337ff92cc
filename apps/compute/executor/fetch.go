package executor

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/darkmatter/darkmatter/apps/compute/call"
	"github.com/darkmatter/darkmatter/apps/compute/manifest"
)

// module returns c's module, verified and admitted with its code, or the
// RESULT that refuses the call. The manifest is the one c carries, else
// the cached one, else the first stored in the DHT that verifies (and,
// with an author list, whose author is allowed). The code is the cached
// bytes, else the DHT's blob, else the requester's (NEED, when c offers
// them); all are checked against the manifest's size and hash first.
//
// A manifest sent with a call serves that call only: the cache keeps the
// code and the manifest found in the DHT, so that no requester can change
// what another's calls run under (anyone may sign a manifest for any
// module's bytes).
func (e *Executor) module(ctx context.Context, c *call.Call, asker io.ReadWriter) (*module, *call.Result) {
	keep := &module{}
	if cached, ok := e.cache.get(c.Module); ok {
		*keep = *cached
	}
	run := *keep // what this call runs under
	if c.Manifest != nil {
		m, err := e.verify(c.Manifest, c.Module)
		if err != nil {
			return nil, &call.Result{Status: call.BadModule, Reason: "the manifest sent with the call: " + err.Error()}
		}
		run.m, run.raw = m, c.Manifest
	}
	if run.m == nil {
		var why string
		run.m, run.raw, why = e.lookUp(ctx, c.Module)
		if run.m == nil {
			return nil, &call.Result{Status: call.NoModule, Reason: why}
		}
		keep.m, keep.raw = run.m, run.raw
	}
	if why := e.cfg.Policy.admit(run.m); why != "" {
		return nil, &call.Result{Status: call.Refused, Reason: why}
	}
	if !run.m.Has(c.Function) {
		return nil, &call.Result{Status: call.BadModule, Reason: fmt.Sprintf("the module exports no function %q", c.Function)}
	}
	if run.code == nil {
		code, res := e.code(ctx, c, run.m, asker)
		if res != nil {
			return nil, res
		}
		run.code, keep.code = code, code
	}
	e.cache.put(c.Module, keep)
	return &run, nil
}

// verify parses a signed manifest and checks its signature and that it
// names module.
func (e *Executor) verify(raw []byte, module [32]byte) (*manifest.Manifest, error) {
	m, err := manifest.Parse(raw)
	if err != nil {
		return nil, err
	}
	if err := m.Verify(e.cfg.Network); err != nil {
		return nil, err
	}
	if m.ModuleHash != module {
		return nil, fmt.Errorf("it names module %s, not %s", short(m.ModuleHash), short(module))
	}
	return m, nil
}

// lookUp finds a manifest for module in the DHT.
func (e *Executor) lookUp(ctx context.Context, module [32]byte) (*manifest.Manifest, []byte, string) {
	if e.cfg.Manifests == nil {
		return nil, nil, "no manifest came with the call, and this executor looks up none"
	}
	raws, err := e.cfg.Manifests(ctx, module)
	if err != nil {
		return nil, nil, fmt.Sprintf("looking up the manifest of module %s: %v", short(module), err)
	}
	why := fmt.Sprintf("no manifest of module %s in the DHT", short(module))
	for _, raw := range raws {
		m, err := e.verify(raw, module)
		if err != nil {
			why = fmt.Sprintf("no valid manifest of module %s in the DHT (%v)", short(module), err)
			continue
		}
		if e.cfg.Policy.admit(m) != "" && len(raws) > 1 {
			continue // another author's manifest may be allowed
		}
		return m, raw, ""
	}
	return nil, nil, why
}

// code gets the module's bytes from the DHT or the requester.
func (e *Executor) code(ctx context.Context, c *call.Call, m *manifest.Manifest, asker io.ReadWriter) ([]byte, *call.Result) {
	var why string
	if e.cfg.Blob != nil {
		code, err := e.cfg.Blob(ctx, c.Module)
		if err == nil {
			if err = m.CheckCode(code); err == nil {
				e.stats.fromDHT.Add(1)
				return code, nil
			}
		}
		why = fmt.Sprintf("module %s from the DHT: %v", short(c.Module), err)
	} else {
		why = "this executor fetches no modules from the DHT"
	}
	if asker == nil || c.Flags&call.FlagOffer == 0 {
		return nil, &call.Result{Status: call.NoModule, Reason: why}
	}
	if err := call.WriteFrame(asker, call.FrameNeed, nil); err != nil {
		return nil, &call.Result{Status: call.NoModule, Reason: err.Error()}
	}
	setReadDeadline(asker, time.Now().Add(ModuleReadTimeout))
	_, code, err := call.ReadFrame(asker, int(m.ModuleSize), call.FrameModule)
	setReadDeadline(asker, time.Time{})
	if err != nil {
		st := call.NoModule // it never came
		if errors.Is(err, call.ErrMalformed) {
			st = call.BadModule // not the size the manifest says
		}
		return nil, &call.Result{Status: st, Reason: "the module from the requester: " + err.Error()}
	}
	if err := m.CheckCode(code); err != nil {
		return nil, &call.Result{Status: call.BadModule, Reason: "the module from the requester: " + err.Error()}
	}
	e.stats.fromAsker.Add(1)
	return code, nil
}

// input returns c's input: the literal, the blob fetched and verified, or
// the output of the nested call, run here within the tree's budget.
func (e *Executor) input(ctx context.Context, c *call.Call, t *tree, level int) ([]byte, *call.Result) {
	switch c.Input.Kind {
	case call.InputBlob:
		if e.cfg.Blob == nil {
			return nil, &call.Result{Status: call.BadInput, Reason: "this executor fetches no blobs"}
		}
		b, err := e.cfg.Blob(ctx, c.Input.Blob)
		switch {
		case err != nil:
			return nil, &call.Result{Status: call.BadInput, Reason: fmt.Sprintf("input blob %s: %v", short(c.Input.Blob), err)}
		case sha256.Sum256(b) != c.Input.Blob:
			return nil, &call.Result{Status: call.BadInput, Reason: fmt.Sprintf("input blob %s: content does not match its hash", short(c.Input.Blob))}
		case len(b) > call.MaxInput:
			return nil, &call.Result{Status: call.BadInput, Reason: fmt.Sprintf("input blob of %d bytes, at most %d", len(b), call.MaxInput)}
		}
		return b, nil
	case call.InputCall:
		if !t.take() {
			return nil, &call.Result{Status: call.Limit, Reason: "the call tree's budget does not cover the input call"}
		}
		inner := *c.Input.Call
		inner.Depth = min(inner.Depth, c.Depth)
		res := e.run(ctx, &inner, nil, t, level+1)
		if res.Status != call.OK {
			res.Reason = "input call: " + res.Reason
			return nil, res
		}
		if len(res.Output) > call.MaxInput {
			return nil, &call.Result{Status: call.BadInput, Reason: fmt.Sprintf("input call's output of %d bytes, at most %d", len(res.Output), call.MaxInput)}
		}
		return res.Output, nil
	}
	return c.Input.Literal, nil
}
