package defaults

import "time"

// Set sets *v to def if *v is zero or negative.
func Set[T int | int64 | float64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}
