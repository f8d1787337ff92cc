// Package atomicfile writes a file so that a reader, or a crash, sees the
// old contents or the new ones, never a mix: key files, the guard file and
// a node's saved state.
package atomicfile
