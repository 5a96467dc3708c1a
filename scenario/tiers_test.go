package scenario

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ratelab/ratelab/internal/wire"
)

// TestTierTallyFromHeaders: each identity sends its own headers (its tier's key), and
// the answers are counted per tier and per limit from what their headers say: the
// enforced limits in RateLimit-Policy, the denying one in a 429's RateLimit, the
// would-be shadow denial in Server-Timing with its limit.
func TestTierTallyFromHeaders(t *testing.T) {
	t.Parallel()
	both := wire.FormatRateLimitPolicies([]wire.RateLimitPolicy{{Name: "per-second", Quota: 10, Window: 1}, {Name: "per-hour", Quota: 50, Window: 3600}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if r.Header.Get("X-Api-Key") == "key-pro-1" {
			// pro: admitted, a shadow limit would have denied.
			h.Set(wire.HeaderRateLimitPolicy, `"per-second";q=100;w=1`)
			h.Set(wire.HeaderServerTiming, wire.FormatServerTiming(time.Millisecond, wire.CheckAllowed))
			h.Add(wire.HeaderServerTiming, wire.FormatShadowTiming(wire.CheckDenied, "candidate"))
			return
		}
		h.Set(wire.HeaderRateLimitPolicy, both)
		switch r.URL.Path {
		case "/products/1":
			h.Set(wire.HeaderRateLimit, wire.FormatRateLimit(wire.RateLimit{Name: "per-second", Remaining: 3, Reset: 1}))
		case "/products/2":
			h.Set(wire.HeaderRateLimit, wire.FormatRateLimit(wire.RateLimit{Name: "per-hour", Remaining: 0, Reset: 3000}))
			w.WriteHeader(http.StatusTooManyRequests)
		case "/products/3": // a 429 that names no limit
			w.WriteHeader(http.StatusTooManyRequests)
		}
	}))
	defer srv.Close()
	ids := []string{"10.0.0.1", "10.0.0.2"}
	tg, err := NewTarget(TargetConfig{
		Bases: []string{srv.URL}, Identities: ids, Conns: 2, Timeout: 5 * time.Second,
		IdentityHeaders: [][]Header{nil, {{Name: "X-Api-Key", Value: "key-pro-1"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	tg.Tiers = NewTierTally(ids, []int{0, 1}, []string{"free", "pro"})
	ctx := context.Background()
	for _, a := range []Arrival{{Identity: 0, Product: 1}, {Identity: 0, Product: 2}, {Identity: 0, Product: 3}, {Identity: 1, Product: 1}} {
		send(ctx, tg, a)
	}
	tg.Warm(ctx, "192.0.2.1", 1) // not a run's identity: not counted
	c := tg.Tiers.Counts()
	free, pro := c[0], c[1]
	if free.Tier != "free" || free.Clients != 1 || free.Requests != 3 || free.Admitted != 1 || free.Denied != 2 || free.DeniedUnnamed != 1 {
		t.Errorf("free: %+v", free)
	}
	want := []LimitCount{{Name: "per-second", Requests: 3, Admitted: 1}, {Name: "per-hour", Requests: 3, Admitted: 1, DeniedBy: 1}}
	if len(free.Limits) != 2 || free.Limits[0] != want[0] || free.Limits[1] != want[1] {
		t.Errorf("free limits %+v, want %+v", free.Limits, want)
	}
	if pro.Requests != 1 || pro.Admitted != 1 || pro.ShadowChecked != 1 || pro.ShadowServed != 1 || pro.ShadowDenied != 1 {
		t.Errorf("pro: %+v", pro)
	}
	if len(pro.Limits) != 2 || pro.Limits[1] != (LimitCount{Name: "candidate", Shadow: true, ShadowDenied: 1}) {
		t.Errorf("pro limits %+v; want per-second and the shadow candidate", pro.Limits)
	}
}

func TestTargetConfigIdentityHeaders(t *testing.T) {
	t.Parallel()
	base := TargetConfig{Bases: []string{"http://127.0.0.1:1"}, Identities: []string{"10.0.0.1"}}
	for name, hs := range map[string][][]Header{
		"one set too many": {nil, nil},
		"a bad header":     {{{Name: "X Bad", Value: "1"}}},
		"a framing header": {{{Name: "Content-Length", Value: "1"}}},
	} {
		c := base
		c.IdentityHeaders = hs
		if _, err := c.check(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
