package deadline

import (
	"sync"
	"time"
)

// Deadline is a settable deadline for one direction of a conn. Wait returns
// a channel that is closed once the deadline has passed. This is the design
// of net.Pipe's pipeDeadline.
type Deadline struct {
	mu     sync.Mutex // guards the following
	timer  *time.Timer
	cancel chan struct{} // closed when the deadline passes
}

// Make returns a deadline that has not passed and is not set.
func Make() Deadline {
	return Deadline{cancel: make(chan struct{})}
}

// Set sets the deadline; the zero time clears it. A blocked call that waits
// on the old channel wakes if the new deadline is already past.
func (d *Deadline) Set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired: wait until its func has closed cancel
	}
	d.timer = nil

	closed := IsClosed(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		ch := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(ch) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

// Stop cancels a pending timer without changing whether the deadline has
// passed. Close calls it so that no timer outlives the conn.
func (d *Deadline) Stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel
	}
	d.timer = nil
}

func (d *Deadline) Wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

// IsClosed reports whether c is closed, without blocking.
func IsClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
