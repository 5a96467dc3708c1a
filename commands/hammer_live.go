package commands

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/ratelab/ratelab/scenario"
)

// liveInterval is how often the progress line is rewritten during a run.
const liveInterval = 250 * time.Millisecond

// liveLine is the progress bar's description while an algorithm's run sends: the
// algorithm, the rate achieved so far, the late sends and the limiter's denials, so a
// generator falling behind shows at once, not only in the report.
type liveLine struct {
	name  string
	start time.Time
	sched *scenario.Schedule
	rec   *scenario.Recorder
	sent  atomic.Int64
	late  atomic.Int64
	// first is when the first request went out (Unix nanoseconds).
	first atomic.Int64
}

// sentOne counts a send; the runner calls it once per request, in schedule order, as
// soon as the request is written. A send is late as the report counts it: more than
// scenario.DefaultLateAfter after its intended time.
func (l *liveLine) sentOne(now time.Time) {
	i := l.sent.Add(1) - 1
	if i == 0 {
		l.first.Store(now.UnixNano())
	}
	if int(i) < len(l.sched.Arrivals) && now.Sub(l.start.Add(l.sched.Arrivals[i].At)) > scenario.DefaultLateAfter {
		l.late.Add(1)
	}
}

// text is the line at now; empty before the first send (the bar then says how long
// the wait for the window edge is).
func (l *liveLine) text(now time.Time) string {
	sent := l.sent.Load()
	if sent == 0 {
		return ""
	}
	var denied int64
	if l.rec != nil {
		denied = l.rec.Checks().Denied
	}
	return liveText(l.name, sent, l.late.Load(), denied, now.Sub(time.Unix(0, l.first.Load())))
}

func liveText(name string, sent, late, denied int64, elapsed time.Duration) string {
	rps := 0.0
	if elapsed > 0 {
		rps = float64(sent) / elapsed.Seconds()
	}
	return fmt.Sprintf("%s: %.0f rps, %d late, %d denied", name, rps, late, denied)
}

// show rewrites the bar's description every liveInterval until stop closes.
func (l *liveLine) show(bar *progressbar.ProgressBar, stop <-chan struct{}) {
	tick := time.NewTicker(liveInterval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			if s := l.text(now); s != "" {
				bar.Describe(s)
			}
		}
	}
}
