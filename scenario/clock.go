package scenario

import (
	"context"
	"time"
)

// ClockOffset is the limiter's clock minus this process's, from one reading of the
// limiter's clock (the Redis server's TIME): the reading is taken to fall halfway
// through the round trip that fetched it.
func ClockOffset(ctx context.Context, limiterNow func(context.Context) (time.Time, error)) (time.Duration, error) {
	before := time.Now()
	t, err := limiterNow(ctx)
	if err != nil {
		return 0, err
	}
	rtt := time.Since(before)
	return t.Sub(before.Add(rtt / 2)), nil
}

// AlignedStart is the local time at which the next window edge of the limiter's clock
// falls, at least lead after now, and that edge in the limiter's microseconds: a run
// that starts there puts schedule time 0 on a window edge of the clock that decides.
func AlignedStart(now time.Time, offset, window, lead time.Duration) (start time.Time, edgeMicros int64) {
	at := now.Add(offset).Add(lead).UnixMicro()
	w := window.Microseconds()
	edge := (at/w + 1) * w
	return time.UnixMicro(edge).Add(-offset), edge
}
