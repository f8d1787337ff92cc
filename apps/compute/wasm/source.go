package wasm

import (
	"context"
	"crypto/sha256"

	"github.com/tetratelabs/wazero/api"
)

// hostSource is source(hash_ptr) -> i32: it starts fetching the data
// source whose SHA-256 is the 32 bytes at hash_ptr and returns its handle,
// in the handle space of call (spec/compute-abi.md §2).
func hostSource(ctx context.Context, mod api.Module, stack []uint64) {
	st := state(ctx)
	var hash [32]byte
	copy(hash[:], read(mod, api.DecodeU32(stack[0]), 32))
	switch {
	case st.source == nil:
		stack[0] = i32(codeRefused)
		return
	case st.sources >= st.l.MaxSources:
		if st.fail == nil {
			st.fail = ErrSourceLimit
		}
		stack[0] = i32(codeLimit)
		return
	}
	st.sources++
	stack[0] = i32(st.start(func(c *subCall) {
		c.res, c.code = fetchSource(st.subCtx, st.source, hash, st.l.MaxSourceSize)
		if c.code == codeFailed {
			st.logf("data source failed")
		}
	}))
}

// fetchSource fetches the blob hash with fetch and returns it, or a code:
// codeTooLarge when it is longer than maxSize, codeFailed when the fetch
// failed or the bytes do not hash to hash. A module never sees bytes that
// were not verified.
func fetchSource(ctx context.Context, fetch SourceFetcher, hash [32]byte, maxSize int) ([]byte, int32) {
	b, err := fetch(ctx, hash)
	switch {
	case err != nil:
		return nil, codeFailed
	case len(b) > maxSize:
		return nil, codeTooLarge
	case sha256.Sum256(b) != hash:
		return nil, codeFailed
	}
	return b, 0
}
