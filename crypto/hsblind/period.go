package hsblind

import (
	"fmt"
	"time"
)

// Time-period constants (spec/hidden-services.md §1).
const (
	// DefaultPeriodLength is the length of a time period unless a network
	// configures another: one day, as in Tor.
	DefaultPeriodLength = 24 * time.Hour
	// PeriodOffset shifts period boundaries from midnight UTC to 12:00 UTC,
	// as Tor's rotation offset does.
	PeriodOffset = 12 * time.Hour
)

// Period is one time period: the Number-th span of Length since
// 1970-01-01T00:00:00Z + PeriodOffset. Length counts in whole minutes.
type Period struct {
	Number uint64
	Length time.Duration
}

// lengthMinutes is p's length in whole minutes; a length under one minute
// means DefaultPeriodLength.
func lengthMinutes(length time.Duration) uint64 {
	m := length / time.Minute
	if m < 1 {
		return uint64(DefaultPeriodLength / time.Minute)
	}
	return uint64(m)
}

// PeriodAt returns the period of the given length that contains t. The
// length is truncated to whole minutes; a length under one minute means
// DefaultPeriodLength. Times before the first period's start (1970-01-01
// 12:00 UTC) fall in period 0.
//
//	number = (unix_minutes(t) − offset_minutes) / length_minutes
func PeriodAt(t time.Time, length time.Duration) Period {
	lm := lengthMinutes(length)
	p := Period{Length: time.Duration(lm) * time.Minute}
	sec := t.Unix()
	minutes := sec / 60
	if sec < 0 && sec%60 != 0 {
		minutes-- // floor, not truncation
	}
	minutes -= int64(PeriodOffset / time.Minute)
	if minutes > 0 {
		p.Number = uint64(minutes) / lm
	}
	return p
}

// Start is the first instant of p.
func (p Period) Start() time.Time {
	lm := lengthMinutes(p.Length)
	return time.Unix(int64(PeriodOffset/time.Second)+int64(p.Number*lm*60), 0).UTC()
}

// End is the first instant after p: the next period's Start.
func (p Period) End() time.Time { return p.Next().Start() }

// Next is the period after p.
func (p Period) Next() Period {
	return Period{Number: p.Number + 1, Length: time.Duration(lengthMinutes(p.Length)) * time.Minute}
}

// Contains reports whether t falls in p.
func (p Period) Contains(t time.Time) bool {
	return !t.Before(p.Start()) && t.Before(p.End())
}

// String is "period N of Lm", for example "period 20400 of 1440m".
func (p Period) String() string {
	return fmt.Sprintf("period %d of %dm", p.Number, lengthMinutes(p.Length))
}
