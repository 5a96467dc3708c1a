package commands

import (
	"testing"
	"time"

	"github.com/ratelab/ratelab/scenario"
)

func TestLiveLine(t *testing.T) {
	t.Parallel()
	sched := &scenario.Schedule{Arrivals: []scenario.Arrival{{At: 0}, {At: 10 * time.Millisecond}, {At: 20 * time.Millisecond}}}
	start := time.Unix(1000, 0)
	rec := scenario.NewRecorder([]string{"10.0.0.1"})
	rec.Record("10.0.0.1", 1, false, 0, nil)
	rec.Record("10.0.0.1", 2, true, 0, nil)
	l := &liveLine{name: "gcra", start: start, sched: sched, rec: rec}
	if s := l.text(start); s != "" {
		t.Errorf("before the first send: %q", s)
	}
	l.sentOne(start.Add(500 * time.Microsecond))                   // on time
	l.sentOne(start.Add(10*time.Millisecond + 2*time.Millisecond)) // 2 ms late
	l.sentOne(start.Add(20*time.Millisecond + time.Millisecond))   // 1 ms: not more than 1 ms
	got := l.text(start.Add(500*time.Microsecond + 100*time.Millisecond))
	if want := "gcra: 30 rps, 1 late, 1 denied"; got != want {
		t.Errorf("the line is %q, want %q", got, want)
	}
}
