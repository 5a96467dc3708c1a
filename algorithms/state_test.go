package algorithms

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratelab/ratelab/internal/redistest"
)

// statePolicies mix whole and fractional emission intervals and bursts above, equal
// to and below the limit, as the oracle test does.
var statePolicies = []Policy{
	{Limit: 10, Window: time.Second},
	{Limit: 3, Window: time.Second, Burst: 1},
	{Limit: 7, Window: 250 * time.Millisecond, Burst: 20},
	{Limit: 20, Window: 2 * time.Second, Burst: 5},
}

// readContent reads a limiter key's raw content the way inspect does.
func readContent(ctx context.Context, t *testing.T, rdb redis.UniversalClient, key string) Content {
	t.Helper()
	typ, err := rdb.Type(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	switch typ {
	case "hash":
		h, err := rdb.HGetAll(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		return Content{Hash: h}
	case "string":
		v, err := rdb.Get(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		return Content{String: &v}
	case "zset":
		zs, err := rdb.ZRangeWithScores(ctx, key, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		c := Content{ZSet: []ZMember{}}
		for _, z := range zs {
			c.ZSet = append(c.ZSet, ZMember{Member: z.Member.(string), Score: z.Score})
		}
		return c
	}
	t.Fatalf("%s: type %q", key, typ)
	return Content{}
}

// cloneModel copies a model so that requests on the copy leave the original alone.
func cloneModel(m Model) Model { return copyState(m.(model)) }

// admitsInARow is how many requests a copy of m admits at now, one after another.
func admitsInARow(m Model, now, bound int64) int64 {
	c := cloneModel(m)
	n := int64(0)
	for n <= bound && c.Allow(now).Allowed {
		n++
	}
	return n
}

// checkState holds a decoded state against the model it was decoded from: the next
// request's Decision, how many requests fit now, when one more fits, when it is fresh.
func checkState(t *testing.T, s State, m Model, now int64) {
	t.Helper()
	if s.TimeMicros != now {
		t.Fatalf("state at %d, want %d", s.TimeMicros, now)
	}
	d := cloneModel(m).Allow(now)
	if d.Allowed != (s.Remaining > 0) {
		t.Fatalf("state %+v, but the next request gets %+v", s, d)
	}
	if d.Allowed {
		if d.Remaining != s.Remaining-1 || d.Delay != s.Delay || s.RetryAfter != 0 {
			t.Fatalf("state %+v, but the next request gets %+v", s, d)
		}
	} else if d.RetryAfter != s.RetryAfter || d.ResetAfter != s.ResetAfter || s.RetryAfter == 0 {
		t.Fatalf("state %+v, but the next request gets %+v", s, d)
	}
	if got := admitsInARow(m, now, s.Capacity); got != s.Remaining {
		t.Fatalf("state %+v says %d fit now; %d do", s, s.Remaining, got)
	}
	if s.NextFree > 0 {
		at := now + s.NextFree.Microseconds()
		if got := admitsInARow(m, at-1, s.Capacity); got != s.Remaining {
			t.Fatalf("state %+v: %d fit 1µs before next_free, want %d", s, got, s.Remaining)
		}
		if got := admitsInARow(m, at, s.Capacity); got <= s.Remaining {
			t.Fatalf("state %+v: %d fit at next_free, want more than %d", s, got, s.Remaining)
		}
	} else if s.Remaining != s.Capacity {
		t.Fatalf("state %+v: next_free is 0 below capacity", s)
	}
	// At ResetAfter the state is fresh: it decides as a new model does.
	at := now + s.ResetAfter.Microseconds()
	old, fresh := cloneModel(m), s.newModel()
	for i := int64(0); i <= s.Capacity; i++ {
		if a, b := old.Allow(at), fresh.Allow(at); a != b {
			t.Fatalf("state %+v: request %d at reset_after gets %+v, a fresh state %+v", s, i, a, b)
		}
	}
}

func (s State) newModel() Model { return specs[s.Algorithm].model(s.Policy, options{}) }

// TestDecodeStateMatchesDecision writes state with the algorithm's own script at
// known times, reads the key back raw, decodes it at the same moment and a little
// later, and holds the state against the model that made the same decisions, and
// against the script's own next Decision: on real Redis, a cluster and the embedded one.
func TestDecodeStateMatchesDecision(t *testing.T) {
	backends := redistest.All(t)
	if len(backends) > 1 {
		backends = append(backends, redistest.Cluster(t))
	}
	for _, b := range backends {
		for _, name := range Names() {
			t.Run(b.Name+"/"+name, func(t *testing.T) {
				t.Parallel()
				ctx := context.Background()
				keys := MustKeyspace("state")
				checked := 0
				for pi, p := range statePolicies {
					rng := rand.New(rand.NewPCG(uint64(pi), 7))
					lim, err := NewRedis(b.Client, keys, name, p)
					if err != nil {
						t.Fatal(err)
					}
					model := specs[name].model(p, options{})
					identity := fmt.Sprintf("10.1.%d.%d", pi, rng.IntN(250))
					key, _ := lim.Key(identity)
					w := p.WindowMicros()
					now := int64(1_790_000_000_000_000) + rng.Int64N(w)
					for i := 0; i < 400; i++ {
						switch r := rng.IntN(10); {
						case r < 3:
						case r < 9:
							now += rng.Int64N(2*w/p.Limit + 1)
						default:
							now += rng.Int64N(2 * w)
						}
						got, err := lim.AllowAt(ctx, identity, time.UnixMicro(now))
						if err != nil {
							t.Fatal(err)
						}
						if want := model.Allow(now); got != want {
							t.Fatalf("request %d: script %+v, model %+v", i, got, want)
						}
						if i%5 != 0 {
							continue
						}
						c := readContent(ctx, t, b.Client, key)
						loaded, err := loadModel(name, p, options{}, c)
						if err != nil {
							t.Fatalf("request %d: %v", i, err)
						}
						if !reflect.DeepEqual(loaded, model) {
							t.Fatalf("request %d: loaded %+v from %+v, the model is %+v", i, loaded, c, model)
						}
						for _, at := range []int64{now, now + rng.Int64N(w/p.Limit+1), now + rng.Int64N(3*w)} {
							s, err := DecodeState(name, p, c, at)
							if err != nil {
								t.Fatal(err)
							}
							checkState(t, s, model, at)
							checked++
						}
						// The script's own next decision, at the same moment, agrees.
						s, _ := DecodeState(name, p, c, now)
						d, err := lim.AllowAt(ctx, identity, time.UnixMicro(now))
						if err != nil {
							t.Fatal(err)
						}
						model.Allow(now)
						if d.Allowed != (s.Remaining > 0) || (d.Allowed && d.Remaining != s.Remaining-1) ||
							(!d.Allowed && (d.RetryAfter != s.RetryAfter || d.ResetAfter != s.ResetAfter)) {
							t.Fatalf("request %d: state %+v, the script's decision %+v", i, s, d)
						}
					}
				}
				if checked < 900 {
					t.Fatalf("checked %d states, want at least 900", checked)
				}
			})
		}
	}
}

// TestDecodeStateExamples pins the examples of the issue: numbers a reader can check.
func TestDecodeStateExamples(t *testing.T) {
	t.Parallel()
	p := Policy{Limit: 10, Window: time.Second}
	start := int64(1_790_000_000_000_000)
	now := start + 588_000
	s, err := DecodeState(FixedWindow, p, Content{Hash: map[string]string{"w": strconv.FormatInt(start, 10), "n": "7"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if s.Used != 7 || s.Remaining != 3 || s.ResetAfter != 412*time.Millisecond || s.NextFree != 412*time.Millisecond {
		t.Errorf("fixed window: %+v", s)
	}
	tb := Policy{Limit: 10, Window: time.Second, Burst: 20}
	// 13.4 tokens = 13.4 × 10^6 units of 1/W token; 6.6 tokens at 10/s fill in 660 ms.
	s, err = DecodeState(TokenBucket, tb, Content{Hash: map[string]string{"t": "13400000", "ts": strconv.FormatInt(now, 10)}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if s.Used != 6.6 || s.Remaining != 13 || s.ResetAfter != 660*time.Millisecond ||
		s.NextFree != 60*time.Millisecond {
		t.Errorf("token bucket: %+v", s)
	}
	var z []ZMember
	for i := 0; i < 9; i++ {
		z = append(z, ZMember{Member: fmt.Sprint(i), Score: float64(now - 880_000 + int64(i)*1000)})
	}
	s, err = DecodeState(SlidingLog, p, Content{ZSet: z}, now)
	if err != nil {
		t.Fatal(err)
	}
	if s.Used != 9 || s.Remaining != 1 || s.NextFree != 120*time.Millisecond || s.ResetAfter != 128*time.Millisecond {
		t.Errorf("sliding log: %+v", s)
	}
}

// TestDecodeStateRefusesForeignContent: content the scripts never write is an error
// that wraps ErrBadState, never a panic or a made-up state.
func TestDecodeStateRefusesForeignContent(t *testing.T) {
	t.Parallel()
	p := Policy{Limit: 10, Window: time.Second}
	h := func(kv ...string) Content {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return Content{Hash: m}
	}
	str := func(s string) Content { return Content{String: &s} }
	cases := []struct {
		name, algorithm string
		c               Content
	}{
		{"missing field", FixedWindow, h("w", "0")},
		{"extra field", FixedWindow, h("w", "0", "n", "1", "x", "1")},
		{"not an integer", FixedWindow, h("w", "0", "n", "seven")},
		{"float", TokenBucket, h("t", "1.5", "ts", "0")},
		{"count above the limit", FixedWindow, h("w", "0", "n", "11")},
		{"negative", SlidingCounter, h("w", "0", "c", "-1", "p", "0")},
		{"tokens above the burst", TokenBucket, h("t", "10000001", "ts", "0")},
		{"level above the burst", LeakyBucket, h("l", "10000001", "ts", "0")},
		{"fraction not below the limit", GCRA, str("0 10")},
		{"zero fraction written out", GCRA, str("0 0")},
		{"tat absurdly far ahead", GCRA, str("9223372036854775807")},
		{"empty string", GCRA, str("")},
		{"not a number", GCRA, str("soon")},
		{"three parts", GCRA, str("1 2 3")},
		{"a hash for GCRA", GCRA, h("tat", "0", "f", "1")},
		{"a string for the token bucket", TokenBucket, str("1")},
		{"a string for the sliding log", SlidingLog, str("1")},
		{"a hash for the sliding log", SlidingLog, h("n", "1")},
		{"a zset for the token bucket", TokenBucket, Content{ZSet: []ZMember{{"a", 1}}}},
		{"fractional score", SlidingLog, Content{ZSet: []ZMember{{"a", 1.5}}}},
		{"negative score", SlidingLog, Content{ZSet: []ZMember{{"a", -1}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := DecodeState(tc.algorithm, p, tc.c, 1_790_000_000_000_000)
			if !errors.Is(err, ErrBadState) {
				t.Fatalf("got %v, want ErrBadState", err)
			}
		})
	}
}
