package algorithms

import (
	"math/rand/v2"
	"testing"
	"time"
)

// fluidLevel is the queue level at now of a leaky bucket that admitted exactly the
// requests at times (ascending, µs): each adds one request (W units), and the queue
// drains L units per µs, never below empty. After give-backs, the level must be that
// of the requests admitted and not given back: never lower (a client would mint
// capacity), and never higher (a slot given back would be lost).
func fluidLevel(p Policy, times []int64, now int64) int64 {
	level, at := int64(0), int64(0)
	for _, t := range append(times, now) {
		if level > 0 {
			if drained := (t - at) * p.Limit; drained >= level {
				level = 0
			} else {
				level -= drained
			}
		}
		at = t
		level += p.WindowMicros()
	}
	return level - p.WindowMicros() // now is not a request
}

// TestLeakyBucketGiveBackIsExact drives the model with random requests and random
// give-backs (of requests still waiting, of requests gone, after other give-backs)
// and holds its level, after every step, to the exact level of the requests admitted
// and not given back. A give-back at or after the request's departure returns
// nothing; one before it, with no give-back since the request was admitted, returns
// its slot.
func TestLeakyBucketGiveBackIsExact(t *testing.T) {
	t.Parallel()
	for pi, p := range statePolicies {
		spacing := p.Window / time.Duration(p.Limit)
		for oi, opts := range [][]Option{nil, {WithMaxDelay(3 * spacing)}} {
			label := []string{"default max delay", "max delay 3 spacings"}[oi]
			o, err := applyOptions(opts)
			if err != nil {
				t.Fatal(err)
			}
			m := newLeakyBucket(p, o).(*leakyBucket)
			rng := rand.New(rand.NewPCG(uint64(pi), uint64(oi)+3))
			type admission struct {
				d  Decision
				op int
			}
			var waiting []admission // admitted, not given back
			var kept []int64        // times of the requests admitted and not given back
			lastReturned := -1      // the step of the last give-back that returned a slot
			now := int64(1_790_000_000_000_000)
			returned, refused := 0, 0
			for op := 0; op < 4000; op++ {
				switch r := rng.IntN(100); {
				case r < 30:
				case r < 95:
					now += rng.Int64N(2*spacing.Microseconds() + 1)
				default:
					now += rng.Int64N(2 * p.WindowMicros())
				}
				if len(waiting) > 0 && rng.IntN(3) == 0 {
					j := len(waiting) - 1 - rng.IntN(min(len(waiting), 6))
					a := waiting[j]
					departure := a.d.TimeMicros + a.d.Delay.Microseconds()
					ok := m.GiveBack(a.d, now)
					switch {
					case ok && now >= departure:
						t.Fatalf("%s step %d: gave back at %d a request that left at %d", p, op, now, departure)
					case !ok && now < departure && a.d.Delay > 0 && lastReturned < a.op:
						t.Fatalf("%s step %d: refused to give back at %d a request that leaves at %d", p, op, now, departure)
					}
					if ok {
						returned++
						lastReturned = op
						waiting = append(waiting[:j], waiting[j+1:]...)
						for k, at := range kept {
							if at == a.d.TimeMicros {
								kept = append(kept[:k], kept[k+1:]...)
								break
							}
						}
					} else {
						refused++
						waiting = append(waiting[:j], waiting[j+1:]...) // given back once only, as callers must
					}
				} else if d := m.Allow(now); d.Allowed {
					waiting = append(waiting, admission{d, op})
					kept = append(kept, now)
				}
				if got, want := m.levelAt(now), fluidLevel(p, kept, now); got != want {
					t.Fatalf("%s %s, step %d at %d: level %d, the requests kept make %d", p, label, op, now, got, want)
				}
				if len(waiting) > 64 {
					waiting = waiting[1:]
				}
			}
			t.Logf("%s %s: %d give-backs returned a slot, %d were refused", p, label, returned, refused)
			if p.EffectiveBurst() == 1 { // nothing ever waits in a queue of one
				continue
			}
			if returned < 100 || refused < 100 {
				t.Fatalf("%s: %d give-backs returned a slot, %d were refused; the traffic does not exercise both", p, returned, refused)
			}
		}
	}
}

// TestLeakyBucketGiveBackAfterAnotherDoesNotMint: requests q, r1 and r2 come at once
// (leaving at 0, 1s and 2s at 1/s) and r1 is given back, so r2 moves up and starts to
// leave at 1s, not at the 2s it was told. A request x joins at 1.2s. A give-back of
// r2 at 1.5s, before its told departure but after its real one, must return nothing:
// taking a slot off the level then would leave it below that of q and x alone.
func TestLeakyBucketGiveBackAfterAnotherDoesNotMint(t *testing.T) {
	t.Parallel()
	p := Policy{Limit: 1, Window: time.Second, Burst: 3}
	m := newLeakyBucket(p, options{}).(*leakyBucket)
	t0 := int64(1_790_000_000_000_000)
	q, r1, r2 := m.Allow(t0), m.Allow(t0), m.Allow(t0)
	if !q.Allowed || r1.Delay != time.Second || r2.Delay != 2*time.Second {
		t.Fatalf("q %+v, r1 %+v, r2 %+v", q, r1, r2)
	}
	if !m.GiveBack(r1, t0+500_000) {
		t.Fatal("r1, waiting, was not given back")
	}
	if x := m.Allow(t0 + 1_200_000); x.Delay != 800*time.Millisecond {
		t.Fatalf("x %+v, want a delay of 800ms behind r2", x)
	}
	if m.GiveBack(r2, t0+1_500_000) {
		t.Fatal("r2, already leaving, was given back")
	}
	// The level is that of q, r2 and x: none of it minted.
	if got, want := m.levelAt(t0+1_500_000), fluidLevel(p, []int64{t0, t0, t0 + 1_200_000}, t0+1_500_000); got != want {
		t.Fatalf("level %d, want %d", got, want)
	}
	if m.GiveBack(q, t0+1) {
		t.Fatal("q, served at once, was given back")
	}
}

// TestLeakyBucketGiveBackAtDeparture: a request can be given back up to the
// microsecond before its departure, not at it.
func TestLeakyBucketGiveBackAtDeparture(t *testing.T) {
	t.Parallel()
	p := Policy{Limit: 3, Window: time.Second} // leaves every 333,333.3µs
	t0 := int64(1_790_000_000_000_000)
	for _, tc := range []struct {
		at   int64
		want bool
	}{{0, true}, {333_333, true}, {333_334, false}, {400_000, false}} {
		m := newLeakyBucket(p, options{}).(*leakyBucket)
		m.Allow(t0)
		d := m.Allow(t0)
		if d.Delay != 333_334*time.Microsecond {
			t.Fatalf("delay %v", d.Delay)
		}
		if got := m.GiveBack(d, t0+tc.at); got != tc.want {
			t.Errorf("give-back %dµs after admission: %v, want %v", tc.at, got, tc.want)
		}
	}
}

// TestLeakyBucketMaxDelay: by default a request is denied rather than told to wait
// more than the drain time B·W/L, at most MaxDelayCap; WithMaxDelay sets it. A denial
// by the max delay says when the request would fit.
func TestLeakyBucketMaxDelay(t *testing.T) {
	t.Parallel()
	t0 := int64(1_790_000_000_000_000)
	cases := []struct {
		name   string
		p      Policy
		opts   []Option
		delays []time.Duration // of the requests admitted at t0, in order
		retry  time.Duration   // of the first one denied
	}{
		{"drain time binds nothing", Policy{Limit: 10, Window: time.Second, Burst: 3}, nil,
			[]time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond}, 100 * time.Millisecond},
		{"capped at 30s", Policy{Limit: 1, Window: 20 * time.Second, Burst: 5}, nil,
			[]time.Duration{0, 20 * time.Second}, 10 * time.Second},
		{"set", Policy{Limit: 10, Window: time.Second, Burst: 100}, []Option{WithMaxDelay(250 * time.Millisecond)},
			[]time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond}, 50 * time.Millisecond},
		{"zero", Policy{Limit: 10, Window: time.Second, Burst: 100}, []Option{WithMaxDelay(0)},
			[]time.Duration{0}, 100 * time.Millisecond},
		{"above the queue's own", Policy{Limit: 1, Window: time.Minute, Burst: 2}, []Option{WithMaxDelay(time.Hour)},
			[]time.Duration{0, time.Minute}, time.Minute},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mm, err := NewModel(LeakyBucket, tc.p, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			m := mm.(*leakyBucket)
			for i, want := range tc.delays {
				before := m.peek(t0)
				d := m.Allow(t0)
				if !d.Allowed || d.Delay != want || d.Remaining != int64(len(tc.delays)-1-i) || before.remaining != int64(len(tc.delays)-i) {
					t.Fatalf("request %d: %+v (peek %+v), want admitted with delay %v", i, d, before, want)
				}
			}
			d := m.Allow(t0)
			if d.Allowed || d.RetryAfter != tc.retry || m.peek(t0).remaining != 0 {
				t.Fatalf("request %d: %+v, want denied with retry-after %v", len(tc.delays), d, tc.retry)
			}
			if !m.Allow(t0 + tc.retry.Microseconds()).Allowed {
				t.Fatalf("denied again after its retry-after %v", tc.retry)
			}
		})
	}
	if _, err := NewModel(LeakyBucket, Policy{Limit: 1, Window: time.Second}, WithMaxDelay(-time.Second)); err == nil {
		t.Error("a negative max delay was accepted")
	}
}
