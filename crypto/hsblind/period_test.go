package hsblind

import (
	"testing"
	"time"
)

// TestPeriodAtTorExample is rend-spec-v3's worked example: 2016-04-13
// 11:15:01 UTC is in period 16903 of 1440 minutes.
func TestPeriodAtTorExample(t *testing.T) {
	now := time.Date(2016, 4, 13, 11, 15, 1, 0, time.UTC)
	p := PeriodAt(now, DefaultPeriodLength)
	if p.Number != 16903 || p.Length != 24*time.Hour {
		t.Fatalf("PeriodAt = %v, want period 16903 of 1440m", p)
	}
	if want := time.Date(2016, 4, 12, 12, 0, 0, 0, time.UTC); !p.Start().Equal(want) {
		t.Errorf("Start = %v, want %v", p.Start(), want)
	}
	if want := time.Date(2016, 4, 13, 12, 0, 0, 0, time.UTC); !p.End().Equal(want) {
		t.Errorf("End = %v, want %v", p.End(), want)
	}
	if !p.Contains(now) || p.Contains(p.End()) || !p.Contains(p.Start()) || p.Contains(p.Start().Add(-time.Nanosecond)) {
		t.Error("Contains disagrees with Start/End")
	}
	if s := p.String(); s != "period 16903 of 1440m" {
		t.Errorf("String = %q", s)
	}
}

func TestPeriodBoundaries(t *testing.T) {
	for _, length := range []time.Duration{time.Minute, 7 * time.Minute, time.Hour, DefaultPeriodLength, 7 * DefaultPeriodLength} {
		p := PeriodAt(time.Date(2026, 12, 2, 4, 44, 0, 0, time.UTC), length)
		if got := PeriodAt(p.Start(), length); got != p {
			t.Errorf("length %v: PeriodAt(Start) = %v, want %v", length, got, p)
		}
		if got := PeriodAt(p.Start().Add(-time.Second), length); got.Number != p.Number-1 {
			t.Errorf("length %v: a second before Start is %v, want number %d", length, got, p.Number-1)
		}
		if got := PeriodAt(p.End(), length); got != p.Next() {
			t.Errorf("length %v: PeriodAt(End) = %v, want %v", length, got, p.Next())
		}
		if got := p.End().Sub(p.Start()); got != length {
			t.Errorf("length %v: End-Start = %v", length, got)
		}
	}
}

func TestPeriodLengthNormalised(t *testing.T) {
	now := time.Date(2026, 12, 2, 4, 44, 0, 0, time.UTC)
	for _, tc := range []struct {
		in, want time.Duration
	}{
		{0, DefaultPeriodLength},
		{-time.Hour, DefaultPeriodLength},
		{59 * time.Second, DefaultPeriodLength},
		{90 * time.Second, time.Minute},
		{time.Hour + 30*time.Second, time.Hour},
	} {
		if got := PeriodAt(now, tc.in).Length; got != tc.want {
			t.Errorf("PeriodAt(length %v).Length = %v, want %v", tc.in, got, tc.want)
		}
	}
	// A Period built by hand with no length blinds and prints as the default.
	if got := (Period{Number: 3}).String(); got != "period 3 of 1440m" {
		t.Errorf("zero-length String = %q", got)
	}
}

func TestPeriodBeforeFirst(t *testing.T) {
	for _, tm := range []time.Time{
		time.Unix(0, 0),
		time.Unix(12*3600-1, 0),
		time.Unix(-61, 0),
		time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		if got := PeriodAt(tm, time.Minute); got.Number != 0 {
			t.Errorf("PeriodAt(%v) = %v, want period 0", tm, got)
		}
	}
	if got := PeriodAt(time.Unix(12*3600+60, 0), time.Minute); got.Number != 1 {
		t.Errorf("one minute after the offset: %v, want period 1", got)
	}
}
