// Package defaults fills the zero (or negative) fields of configuration
// structs with their documented defaults, so each package's New reads as a
// list of fields and values instead of a ladder of if-statements.
//
// It knows nothing of any configuration: callers name the field and the
// default.
package defaults
