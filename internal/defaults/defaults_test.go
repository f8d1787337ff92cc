package defaults

import (
	"testing"
	"time"
)

func TestSet(t *testing.T) {
	a, b, c, d := 0, -3, 7, time.Duration(0)
	Set(&a, 5)
	Set(&b, 5)
	Set(&c, 5)
	Set(&d, time.Second)
	if a != 5 || b != 5 || c != 7 || d != time.Second {
		t.Fatalf("got %d %d %d %v", a, b, c, d)
	}
}
