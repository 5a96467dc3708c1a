package scenario

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestAlignedStart(t *testing.T) {
	t.Parallel()
	now := time.UnixMicro(10_300_000) // local clock
	tests := []struct {
		name                 string
		offset, window, lead time.Duration
		wantStart, wantEdge  int64 // local µs, limiter µs
	}{
		{"same clock", 0, time.Second, 20 * time.Millisecond, 11_000_000, 11_000_000},
		{"limiter ahead", 500 * time.Millisecond, time.Second, 20 * time.Millisecond, 10_500_000, 11_000_000},
		{"limiter behind", -400 * time.Millisecond, time.Second, 0, 10_400_000, 10_000_000},
		{"lead past an edge", 0, time.Second, 800 * time.Millisecond, 12_000_000, 12_000_000},
		{"short window", 0, 100 * time.Millisecond, 0, 10_400_000, 10_400_000},
	}
	for _, tt := range tests {
		start, edge := AlignedStart(now, tt.offset, tt.window, tt.lead)
		if start.UnixMicro() != tt.wantStart || edge != tt.wantEdge {
			t.Errorf("%s: start %d, edge %d; want %d, %d", tt.name, start.UnixMicro(), edge, tt.wantStart, tt.wantEdge)
		}
		if got := start.Add(tt.offset).UnixMicro(); got != edge {
			t.Errorf("%s: the start is at %d on the limiter's clock, not on its edge %d", tt.name, got, edge)
		}
	}
}

func TestClockOffset(t *testing.T) {
	t.Parallel()
	ahead := 3 * time.Second
	off, err := ClockOffset(context.Background(), func(context.Context) (time.Time, error) { return time.Now().Add(ahead), nil })
	// The reading is within the round trip of the call, so the offset is within it too.
	if err != nil || off < ahead-time.Second || off > ahead+time.Second {
		t.Fatalf("offset %s, %v; want about %s", off, err, ahead)
	}
	boom := errors.New("no TIME")
	if _, err := ClockOffset(context.Background(), func(context.Context) (time.Time, error) { return time.Time{}, boom }); !errors.Is(err, boom) {
		t.Fatalf("error %v; want the limiter's", err)
	}
}
