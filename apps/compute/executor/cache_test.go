package executor

import (
	"testing"

	"github.com/darkmatter/darkmatter/apps/compute/manifest"
)

// The module cache keeps at most its byte bound, evicting the least
// recently used, and never keeps a module larger than the bound.
func TestCacheBound(t *testing.T) {
	c := newCache(1000)
	mod := func(id byte, n int) ([32]byte, *module) {
		return [32]byte{id}, &module{m: &manifest.Manifest{ModuleHash: [32]byte{id}}, code: make([]byte, n)}
	}
	c.put(mod(1, 400))
	c.put(mod(2, 400))
	if _, ok := c.get([32]byte{1}); !ok { // 1 is now the most recent
		t.Fatal("module 1 missing")
	}
	c.put(mod(3, 400)) // over the bound: 2, the least recently used, goes
	if _, ok := c.get([32]byte{2}); ok {
		t.Error("module 2 kept over the bound")
	}
	if n, b := c.len(); n != 2 || b != 800 {
		t.Errorf("%d modules, %d bytes", n, b)
	}
	c.put(mod(4, 2000))
	if _, ok := c.get([32]byte{4}); ok {
		t.Error("a module larger than the bound was kept")
	}
	c.put(mod(1, 100)) // replacing a module counts its new size only
	if _, b := c.len(); b != 500 {
		t.Errorf("%d bytes after replacing module 1", b)
	}
}
