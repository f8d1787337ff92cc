package deadline

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A deadline passes when set in the past or when its time comes, clears
// with the zero time, and Stop leaves no timer behind.
func TestDeadline(t *testing.T) {
	d := Make()
	if IsClosed(d.Wait()) {
		t.Fatal("a new deadline has passed")
	}
	d.Set(time.Now().Add(-time.Second))
	if !IsClosed(d.Wait()) {
		t.Fatal("a past deadline has not passed")
	}
	d.Set(time.Time{})
	if IsClosed(d.Wait()) {
		t.Fatal("a cleared deadline has passed")
	}
	d.Set(time.Now().Add(20 * time.Millisecond))
	select {
	case <-d.Wait():
	case <-time.After(5 * time.Second):
		t.Fatal("the deadline never passed")
	}
	d.Set(time.Now().Add(time.Hour))
	d.Stop()
	if IsClosed(d.Wait()) {
		t.Fatal("Stop made the deadline pass")
	}
}
