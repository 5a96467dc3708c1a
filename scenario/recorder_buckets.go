package scenario

import "time"

// CountPer makes the recorder count every decision, admitted and denied, per interval
// of length d of the decisions' server time (W/10 for the report's run chart). Call
// it before the run; d of 0 or less counts nothing.
func (r *Recorder) CountPer(d time.Duration) { r.bucket = d.Microseconds() }

func (sh *recorderShard) count(i int64, allowed bool) {
	if sh.buckets == nil {
		sh.buckets = make(map[int64]*[2]int64)
	}
	c := sh.buckets[i]
	if c == nil {
		c = new([2]int64)
		sh.buckets[i] = c
	}
	if allowed {
		c[0]++
	} else {
		c[1]++
	}
}

// Decisions are the decisions counted per interval (Recorder.CountPer), from a start.
type Decisions struct {
	// BucketMicros is the length of an interval.
	BucketMicros int64
	// Allowed and Denied count the decisions in each interval from the start on.
	Allowed, Denied []int64
}

// DecisionsFrom returns the decisions counted per interval from the server time from
// (microseconds) to the last interval with a decision; decisions before from are
// left out. Empty when CountPer was not called.
func (r *Recorder) DecisionsFrom(from int64) Decisions {
	d := Decisions{BucketMicros: r.bucket}
	if r.bucket <= 0 {
		return d
	}
	first := from / r.bucket
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		for b, c := range sh.buckets {
			at := b - first
			if at < 0 {
				continue
			}
			for int64(len(d.Allowed)) <= at {
				d.Allowed, d.Denied = append(d.Allowed, 0), append(d.Denied, 0)
			}
			d.Allowed[at] += c[0]
			d.Denied[at] += c[1]
		}
		sh.mu.Unlock()
	}
	return d
}
