package wire_test

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/dunglas/httpsfv"

	"github.com/ratelab/ratelab/internal/cache"
	"github.com/ratelab/ratelab/internal/wire"
)

func TestServerTimingRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		took    time.Duration
		outcome string
		want    string
	}{
		{231 * time.Microsecond, wire.CheckAllowed, `ratelimit;dur=0.231;desc="allowed"`},
		{50 * time.Millisecond, wire.CheckError, `ratelimit;dur=50.000;desc="error"`},
		{0, wire.CheckDenied, `ratelimit;dur=0.000;desc="denied"`},
		{1500*time.Millisecond + 7*time.Microsecond, wire.CheckDenied, `ratelimit;dur=1500.007;desc="denied"`},
	}
	for _, tt := range tests {
		got := wire.FormatServerTiming(tt.took, tt.outcome)
		if got != tt.want {
			t.Errorf("FormatServerTiming(%v, %q) = %q; want %q", tt.took, tt.outcome, got, tt.want)
		}
		took, outcome, ok := wire.ParseServerTiming([]string{got})
		if !ok || took != tt.took || outcome != tt.outcome {
			t.Errorf("ParseServerTiming(%q) = %v, %q, %v; want %v, %q, true", got, took, outcome, ok, tt.took, tt.outcome)
		}
	}
}

func TestParseServerTiming(t *testing.T) {
	t.Parallel()
	tests := []struct {
		values  []string
		took    time.Duration
		outcome string
		ok      bool
	}{
		{[]string{`ratelimit;dur=0.231;desc="allowed"`}, 231 * time.Microsecond, "allowed", true},
		{[]string{`db;dur=53, ratelimit;desc="denied";dur=1.5`}, 1500 * time.Microsecond, "denied", true},
		{[]string{`cache;desc="hit"`, `ratelimit; dur=50.000; desc=error`}, 50 * time.Millisecond, "error", true},
		{[]string{`ratelimit`}, 0, "", true},
		{[]string{`ratelimit;dur=-3;desc="allowed"`}, 0, "allowed", true},
		{[]string{`db;dur=53`}, 0, "", false},
		{nil, 0, "", false},
	}
	for _, tt := range tests {
		took, outcome, ok := wire.ParseServerTiming(tt.values)
		if took != tt.took || outcome != tt.outcome || ok != tt.ok {
			t.Errorf("ParseServerTiming(%q) = %v, %q, %v; want %v, %q, %v", tt.values, took, outcome, ok, tt.took, tt.outcome, tt.ok)
		}
	}
}

// sfvItem is what httpsfv.Marshal makes of one named item with integer parameters: the
// reference the hand-appended Format is held to.
func sfvItem(t *testing.T, name string, params ...any) string {
	t.Helper()
	p := httpsfv.NewParams()
	for i := 0; i < len(params); i += 2 {
		p.Add(params[i].(string), params[i+1])
	}
	s, err := httpsfv.Marshal(httpsfv.List{httpsfv.Item{Value: name, Params: p}})
	if err != nil {
		t.Fatalf("httpsfv.Marshal(%q): %v", name, err)
	}
	return s
}

func TestRateLimitPolicyRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p    wire.RateLimitPolicy
		want string
	}{
		{wire.RateLimitPolicy{Name: "default", Quota: 10, Window: 1}, `"default";q=10;w=1`},
		{wire.RateLimitPolicy{Name: "write", Quota: 1, Window: 60}, `"write";q=1;w=60`},
		{wire.RateLimitPolicy{Name: "read", Quota: 0, Window: 0}, `"read";q=0;w=0`},
		{wire.RateLimitPolicy{Name: `a "quoted" \ name`, Quota: 999_999_999_999_999, Window: 86400}, `"a \"quoted\" \\ name";q=999999999999999;w=86400`},
		{wire.RateLimitPolicy{Name: "default", Quota: 10, Window: 1, WindowMillis: 500, Algorithm: "sliding-log"}, `"default";q=10;w=1;ratelab-window-ms=500;ratelab-algorithm=sliding-log`},
		{wire.RateLimitPolicy{Name: "default", Quota: 100, Window: 2, WindowMillis: 1500, Algorithm: "gcra"}, `"default";q=100;w=2;ratelab-window-ms=1500;ratelab-algorithm=gcra`},
	}
	for _, tt := range tests {
		got := wire.FormatRateLimitPolicy(tt.p)
		if got != tt.want {
			t.Errorf("FormatRateLimitPolicy(%+v) = %q; want %q", tt.p, got, tt.want)
		}
		params := []any{"q", tt.p.Quota, "w", tt.p.Window}
		if tt.p.WindowMillis > 0 {
			params = append(params, wire.ParamWindowMillis, tt.p.WindowMillis)
		}
		if tt.p.Algorithm != "" {
			params = append(params, wire.ParamAlgorithm, httpsfv.Token(tt.p.Algorithm))
		}
		if ref := sfvItem(t, tt.p.Name, params...); got != ref {
			t.Errorf("FormatRateLimitPolicy(%+v) = %q; httpsfv.Marshal writes %q", tt.p, got, ref)
		}
		back, err := wire.ParseRateLimitPolicy([]string{got})
		if err != nil || len(back) != 1 || back[0] != tt.p {
			t.Errorf("ParseRateLimitPolicy(%q) = %+v, %v; want [%+v]", got, back, err, tt.p)
		}
	}
}

func TestRateLimitRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		l    wire.RateLimit
		want string
	}{
		{wire.RateLimit{Name: "default", Remaining: 5, Reset: 1}, `"default";r=5;t=1`},
		{wire.RateLimit{Name: "default", Remaining: 0, Reset: 17}, `"default";r=0;t=17`},
		{wire.RateLimit{Name: "write", Remaining: 123456, Reset: 0}, `"write";r=123456;t=0`},
	}
	for _, tt := range tests {
		got := wire.FormatRateLimit(tt.l)
		if got != tt.want {
			t.Errorf("FormatRateLimit(%+v) = %q; want %q", tt.l, got, tt.want)
		}
		if ref := sfvItem(t, tt.l.Name, "r", tt.l.Remaining, "t", tt.l.Reset); got != ref {
			t.Errorf("FormatRateLimit(%+v) = %q; httpsfv.Marshal writes %q", tt.l, got, ref)
		}
		back, err := wire.ParseRateLimit([]string{got})
		if err != nil || len(back) != 1 || back[0] != tt.l {
			t.Errorf("ParseRateLimit(%q) = %+v, %v; want [%+v]", got, back, err, tt.l)
		}
	}
}

// TestFormatDropsWhatAStringCannotCarry: a name with bytes outside printable ASCII
// still gives a field a structured-field parser accepts.
func TestFormatDropsWhatAStringCannotCarry(t *testing.T) {
	t.Parallel()
	got := wire.FormatRateLimitPolicy(wire.RateLimitPolicy{Name: "caf\u00e9\n1", Quota: 2, Window: 3})
	if want := `"caf1";q=2;w=3`; got != want {
		t.Errorf("FormatRateLimitPolicy = %q; want %q", got, want)
	}
	if _, err := wire.ParseRateLimitPolicy([]string{got}); err != nil {
		t.Errorf("ParseRateLimitPolicy(%q): %v", got, err)
	}
}

func TestParseRateLimitPolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		values []string
		want   []wire.RateLimitPolicy
		bad    bool
	}{
		{values: nil},
		{values: []string{`"burst";q=100;w=60, "daily";q=1000;w=86400`},
			want: []wire.RateLimitPolicy{{Name: "burst", Quota: 100, Window: 60}, {Name: "daily", Quota: 1000, Window: 86400}}},
		{values: []string{`"burst";q=100;w=60`, `"daily";q=1000;w=86400`},
			want: []wire.RateLimitPolicy{{Name: "burst", Quota: 100, Window: 60}, {Name: "daily", Quota: 1000, Window: 86400}}},
		{values: []string{`"default"; q=10; w=1`}, want: []wire.RateLimitPolicy{{Name: "default", Quota: 10, Window: 1}}},
		{values: []string{`default;q=10;qu="requests";pk=:YWJj:`}, want: []wire.RateLimitPolicy{{Name: "default", Quota: 10, Window: 0}}},
		{values: []string{`"default";q=10;w=1;ratelab-window-ms=500;ratelab-algorithm=gcra`},
			want: []wire.RateLimitPolicy{{Name: "default", Quota: 10, Window: 1, WindowMillis: 500, Algorithm: "gcra"}}},
		{values: []string{`"default";q=10;w=1;ratelab-algorithm="gcra"`}, bad: true},
		{values: []string{`"default";q=10;w=1;ratelab-window-ms=-5`}, bad: true},
		{values: []string{`"default";w=1`}, bad: true},
		{values: []string{`"default";q=-1;w=1`}, bad: true},
		{values: []string{`"default";q=1.5;w=1`}, bad: true},
		{values: []string{`"default";q="10";w=1`}, bad: true},
		{values: []string{`10;w=1`}, bad: true},
		{values: []string{`("a" "b");q=1`}, bad: true},
		{values: []string{`"default;q=10`}, bad: true},
		{values: []string{`"default";q=10;;w=1`}, bad: true},
	}
	for _, tt := range tests {
		got, err := wire.ParseRateLimitPolicy(tt.values)
		if tt.bad {
			if !errors.Is(err, wire.ErrMalformed) {
				t.Errorf("ParseRateLimitPolicy(%q) = %+v, %v; want ErrMalformed", tt.values, got, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseRateLimitPolicy(%q) = %+v, %v; want %+v", tt.values, got, err, tt.want)
		}
	}
}

func TestParseRateLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		values []string
		want   []wire.RateLimit
		bad    bool
	}{
		{values: []string{`"default";r=0;t=3`}, want: []wire.RateLimit{{Name: "default", Remaining: 0, Reset: 3}}},
		{values: []string{`"default";r=4`}, want: []wire.RateLimit{{Name: "default", Remaining: 4, Reset: 0}}},
		{values: []string{`"default";t=3`}, bad: true},
		{values: []string{`"default";r=?1`}, bad: true},
		{values: []string{`"default",`}, bad: true},
	}
	for _, tt := range tests {
		got, err := wire.ParseRateLimit(tt.values)
		if tt.bad {
			if !errors.Is(err, wire.ErrMalformed) {
				t.Errorf("ParseRateLimit(%q) = %+v, %v; want ErrMalformed", tt.values, got, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseRateLimit(%q) = %+v, %v; want %+v", tt.values, got, err, tt.want)
		}
	}
}

func TestXCacheRoundTrip(t *testing.T) {
	t.Parallel()
	for _, src := range []cache.Source{cache.FromLocal, cache.FromRedis, cache.FromLoad, cache.FromWait, cache.FromShared, cache.FromBypass} {
		v := wire.FormatXCache(src)
		if back, ok := wire.ParseXCache(v); !ok || back != src {
			t.Errorf("ParseXCache(FormatXCache(%q) = %q) = %q, %v", src, v, back, ok)
		}
	}
	for _, v := range []string{"", "HIT", "Local", "miss "} {
		if src, ok := wire.ParseXCache(v); ok {
			t.Errorf("ParseXCache(%q) = %q, true; want false", v, src)
		}
	}
}

func ExampleFormatRateLimitPolicy() {
	fmt.Println(wire.FormatRateLimitPolicy(wire.RateLimitPolicy{Name: "default", Quota: 10, Window: 1}))
	fmt.Println(wire.FormatRateLimit(wire.RateLimit{Name: "default", Remaining: 0, Reset: 1}))
	// Output:
	// "default";q=10;w=1
	// "default";r=0;t=1
}

func ExampleParseRateLimitPolicy() {
	policies, err := wire.ParseRateLimitPolicy([]string{`"burst";q=100;w=60, "daily";q=1000;w=86400`})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range policies {
		fmt.Printf("%s: %d per %ds\n", p.Name, p.Quota, p.Window)
	}
	// Output:
	// burst: 100 per 60s
	// daily: 1000 per 86400s
}

func ExampleParseServerTiming() {
	took, outcome, ok := wire.ParseServerTiming([]string{`db;dur=53, ratelimit;dur=0.231;desc="denied"`})
	fmt.Println(took, outcome, ok)
	// Output: 231µs denied true
}

var sink string

// The Format functions run on every checked request. Each benchmark has its
// counterpart as serve wrote the header before this package ("before"), and the
// RateLimit ones httpsfv.Marshal's, the library the tests hold the bytes to.
func BenchmarkFormatServerTiming(b *testing.B) {
	b.Run("wire", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			sink = wire.FormatServerTiming(time.Duration(i%5000)*time.Microsecond, wire.CheckAllowed)
		}
	})
}

func BenchmarkFormatRateLimit(b *testing.B) {
	b.Run("wire", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			sink = wire.FormatRateLimitPolicy(wire.RateLimitPolicy{Name: "default", Quota: 100, Window: 1})
			sink = wire.FormatRateLimit(wire.RateLimit{Name: "default", Remaining: int64(i % 100), Reset: 1})
		}
	})
	b.Run("before", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			sink = strconv.Quote("default") + ";q=" + strconv.FormatInt(100, 10) + ";w=" + strconv.FormatInt(1, 10)
			sink = strconv.Quote("default") + ";r=" + strconv.FormatInt(int64(i%100), 10) + ";t=" + strconv.FormatInt(1, 10)
		}
	})
	b.Run("httpsfv", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			for _, kv := range [2][4]any{{"q", int64(100), "w", int64(1)}, {"r", int64(i % 100), "t", int64(1)}} {
				p := httpsfv.NewParams()
				p.Add(kv[0].(string), kv[1])
				p.Add(kv[2].(string), kv[3])
				s, err := httpsfv.Marshal(httpsfv.List{httpsfv.Item{Value: "default", Params: p}})
				if err != nil {
					b.Fatal(err)
				}
				sink = s
			}
		}
	})
}
