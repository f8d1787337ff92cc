// Package safelog provides injected, printf-style logging and a wrapper that
// keeps sensitive values out of logs, like arti's safelog crate.
//
// darkmatter's anonymity rule (STYLE.md §2.4, point 20) says addresses, node
// IDs, circuit IDs and keys reach a log only through [Sensitive]:
//
//	logf.Printf("extend to %v failed: %v", safelog.S(nodeID), err)
//
// prints "extend to [scrubbed] failed: ..." unless the operator turned on
// [SetUnsafeLogging], for example while debugging a private test network.
//
// [Scrub] removes the host names and addresses that the net package's
// errors print (dial, lookup, address and URL errors), keeping their
// chain for errors.Is and errors.As.
//
// [Logf] is the logger type that components take in their Options; a nil Logf
// is silent, so there is no package-level logger anywhere in the core.
//
// What it does not do:
//   - It does not find sensitive data by itself. Only values wrapped with [S]
//     are redacted. A raw address passed next to it, an error message that
//     already contains the address, or a struct that holds the raw value in
//     another field are printed as they are. Wrap at the point where the value
//     is logged, and keep sensitive values out of error strings.
//   - A Sensitive protects itself wherever fmt prints it: as a direct
//     argument with any verb (%v %+v %#v %s %q %x %d %p %w ...), inside
//     slices and maps, and inside structs printed with %v, %+v or %#v, in
//     exported and unexported fields alike. Where fmt cannot call its methods
//     (an unexported field, or a verb its container rejects) it prints a
//     meaningless address instead of [Scrubbed], and does so even when unsafe
//     logging is on. It cannot protect what it does not wrap.
//   - Two Sensitive values compare equal only if they come from the same
//     call to [S]; compare the wrapped values, not the wrappers.
//   - Redaction happens when the value is formatted. A string built while
//     unsafe logging was on keeps the value after it is turned off, and the
//     reverse.
//   - It has no levels, sinks, rotation or structured fields; cmd/ decides
//     where lines go.
//
// No spec/ section is normative for this package.
package safelog
