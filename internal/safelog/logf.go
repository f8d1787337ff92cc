package safelog

import "strings"

// Logf is a printf-style logger, as taken by darkmatter components in their
// Options. A nil Logf is silent. Implementations must be safe for concurrent
// use and should add a trailing newline themselves if they need one.
type Logf func(format string, args ...any)

// Printf logs through l. It is a no-op when l is nil.
func (l Logf) Printf(format string, args ...any) {
	if l != nil {
		l(format, args...)
	}
}

// Prefix returns a Logf that writes p before every line it logs through l.
// p is literal text: a '%' in it is not treated as a verb. A nil Logf stays
// nil, so prefixing never turns a silent logger into a noisy one.
func (l Logf) Prefix(p string) Logf {
	if l == nil {
		return nil
	}
	p = strings.ReplaceAll(p, "%", "%%")
	return func(format string, args ...any) {
		l(p+format, args...)
	}
}
