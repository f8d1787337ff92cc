package executor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/apps/compute/call"
	"github.com/darkmatter/darkmatter/apps/compute/wasm"
)

// tree is one call's share of its call tree: the calls it may still start
// below it (budget), the calls it used (itself, nested input calls, and
// what its sub-calls reported), and the first limit that refused a
// sub-call.
type tree struct {
	mu      sync.Mutex
	budget  int
	used    int
	started int
	limit   string
}

// take takes one call of the budget for a call run here.
func (t *tree) take() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.budget <= 0 {
		return false
	}
	t.budget--
	t.used++
	return true
}

// lend lends a sub-call its share of the budget: what is left divided
// among the sub-calls the run may still start (slots), at least 1; 0 when
// nothing is left.
func (t *tree) lend(slots int) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.started++
	if t.budget <= 0 {
		return 0
	}
	share := max(1, t.budget/max(1, slots-t.started+1))
	t.budget -= share
	return share
}

// settle returns what a sub-call lent share did not use and counts what
// it did.
func (t *tree) settle(share, used int) {
	used = min(max(used, 1), share)
	t.mu.Lock()
	t.budget += share - used
	t.used += used
	t.mu.Unlock()
}

// refuse records the first limit that refused a sub-call.
func (t *tree) refuse(why string) error {
	t.mu.Lock()
	if t.limit == "" {
		t.limit = why
	}
	t.mu.Unlock()
	return errors.New(why)
}

func (t *tree) limitReason() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.limit
}

// subCaller returns the wasm.SubCaller of a run: each sub-call goes to
// Delegate with one level of depth less, a share of the budget, and the
// time left until the run's deadline.
func (e *Executor) subCaller(t *tree, depth uint8, slots int, deadline time.Time) wasm.SubCaller {
	return func(ctx context.Context, module [32]byte, function string, input []byte) ([]byte, error) {
		if depth == 0 {
			return nil, t.refuse(fmt.Sprintf("sub-call depth limit reached (module %s)", short(module)))
		}
		share := t.lend(slots)
		if share == 0 {
			return nil, t.refuse("the call tree's budget is spent")
		}
		left := time.Until(deadline).Truncate(time.Millisecond)
		if left < time.Millisecond {
			t.settle(share, 1)
			return nil, context.DeadlineExceeded
		}
		c := &call.Call{
			Module: module, Function: function, Depth: depth - 1,
			Budget: uint16(min(share, 65535)), Timeout: min(left, call.MaxTimeout),
			Input: call.Literal(input),
		}
		var code []byte
		if mod, ok := e.cache.get(module); ok {
			c.Manifest, code = mod.raw, mod.code
		}
		e.stats.subCalls.Add(1)
		res, err := e.cfg.Delegate(ctx, c, code)
		if err != nil {
			t.settle(share, share)
			return nil, err
		}
		t.settle(share, int(res.Used))
		if res.Status == call.Limit {
			return nil, t.refuse(res.Reason)
		}
		if err := res.Err(); err != nil {
			return nil, err
		}
		return res.Output, nil
	}
}
