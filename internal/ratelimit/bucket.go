package ratelimit

import "time"

// Bucket holds up to burst tokens, refilled at rate per second. The zero
// value is a full bucket.
type Bucket struct {
	tokens float64
	last   time.Time // zero until the first Take
}

// Take takes one token at now, reporting whether there was one.
func (b *Bucket) Take(now time.Time, rate float64, burst int) bool {
	if b.last.IsZero() {
		b.tokens = float64(burst)
	} else if d := now.Sub(b.last); d > 0 {
		b.tokens = min(float64(burst), b.tokens+d.Seconds()*rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// Last returns when a token was last asked for (zero before the first
// Take): a table of buckets forgets one idle long enough to be full again.
func (b *Bucket) Last() time.Time { return b.last }
