package wire_test

import (
	"testing"

	"github.com/dunglas/httpsfv"

	"github.com/ratelab/ratelab/internal/wire"
)

// TestRateLimitPoliciesRoundTrip: several limits in one RateLimit-Policy are the
// list httpsfv.Marshal writes, and read back item by item.
func TestRateLimitPoliciesRoundTrip(t *testing.T) {
	t.Parallel()
	ps := []wire.RateLimitPolicy{
		{Name: "per-second", Quota: 10, Window: 1},
		{Name: "per-hour", Quota: 1000, Window: 3600},
	}
	got := wire.FormatRateLimitPolicies(ps)
	if want := `"per-second";q=10;w=1, "per-hour";q=1000;w=3600`; got != want {
		t.Fatalf("FormatRateLimitPolicies = %q, want %q", got, want)
	}
	var list httpsfv.List
	for _, p := range ps {
		params := httpsfv.NewParams()
		params.Add("q", p.Quota)
		params.Add("w", p.Window)
		list = append(list, httpsfv.Item{Value: p.Name, Params: params})
	}
	if ref, err := httpsfv.Marshal(list); err != nil || ref != got {
		t.Fatalf("httpsfv.Marshal writes %q (%v), Format %q", ref, err, got)
	}
	back, err := wire.ParseRateLimitPolicy([]string{got})
	if err != nil || len(back) != 2 || back[0] != ps[0] || back[1] != ps[1] {
		t.Fatalf("ParseRateLimitPolicy(%q) = %+v, %v", got, back, err)
	}
}

func TestShadowTimingRoundTrip(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ outcome, limit, want string }{
		{wire.CheckDenied, "writes", `ratelimit-shadow;desc="denied";limit="writes"`},
		{wire.CheckAllowed, "", `ratelimit-shadow;desc="allowed"`},
	} {
		v := wire.FormatShadowTiming(c.outcome, c.limit)
		if v != c.want {
			t.Fatalf("FormatShadowTiming(%q, %q) = %q, want %q", c.outcome, c.limit, v, c.want)
		}
		values := []string{`ratelimit;dur=0.200;desc="allowed"`, v}
		if got, limit, ok := wire.ParseShadowTiming(values); !ok || got != c.outcome || limit != c.limit {
			t.Fatalf("ParseShadowTiming(%q) = %q, %q, %v", values, got, limit, ok)
		}
		if _, o, ok := wire.ParseServerTiming(values); !ok || o != wire.CheckAllowed {
			t.Fatalf("the check's own metric is not read beside the shadow one: %q, %v", o, ok)
		}
	}
	// One header line with both metrics, as a proxy may fold them.
	if o, limit, ok := wire.ParseShadowTiming([]string{`ratelimit;dur=1;desc="allowed", ratelimit-shadow; desc="denied"; limit="per-day"`}); !ok || o != wire.CheckDenied || limit != "per-day" {
		t.Fatalf("a folded header: %q %q %v", o, limit, ok)
	}
	if _, _, ok := wire.ParseShadowTiming([]string{`ratelimit;dur=1;desc="denied"`}); ok {
		t.Fatal("found a shadow metric where there is none")
	}
}
