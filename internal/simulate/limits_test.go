package simulate

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/policy"
	"github.com/ratelab/ratelab/internal/redistest"
	"github.com/ratelab/ratelab/internal/trace"
)

// issueFile is the policy file of docs/policies.md's contract.
func issueFile(t testing.TB) *policy.Policy {
	t.Helper()
	p, err := policy.Load("../policy/testdata/issue.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var limitsT0 = time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC).UnixMicro()

// burst is n requests of one client at one instant.
func burst(at time.Duration, n int, r trace.Request) []trace.Request {
	r.Time = limitsT0 + at.Microseconds()
	return slices.Repeat([]trace.Request{r}, n)
}

func sortByTime(reqs []trace.Request) []trace.Request {
	slices.SortStableFunc(reqs, func(a, b trace.Request) int { return cmp.Compare(a.Time, b.Time) })
	return reqs
}

// TestLimitsKnownAnswers runs the contract's file over a small trace whose every
// figure is worked out by hand in the comments.
func TestLimitsKnownAnswers(t *testing.T) {
	t.Parallel()
	get := func(client, key string) trace.Request {
		return trace.Request{Client: client, Method: "GET", Route: "/products/7", Key: key}
	}
	var reqs []trace.Request
	// A free client (no key): 25 at once, the token bucket's burst of 20 admits 20;
	// a second later 10 tokens are back: 10 of the next 25.
	reqs = append(reqs, burst(0, 25, get("10.0.0.1", ""))...)
	reqs = append(reqs, burst(time.Second, 25, get("10.0.0.1", ""))...)
	// The pro key: gcra 100/1s burst 200 admits 200 of 250 at once.
	reqs = append(reqs, burst(0, 250, get("10.0.0.2", "key-pro-1"))...)
	// An unknown key is the default tier, free: 20 of 25.
	reqs = append(reqs, burst(0, 25, get("10.0.0.3", "key-nobody"))...)
	// One a second for 60 s: the per-second limit never bites, the per-hour one
	// (sliding-log 50/1h) admits 50 and denies 10.
	for s := range 60 {
		reqs = append(reqs, burst(time.Duration(s)*time.Second, 1, get("10.0.0.4", ""))...)
	}
	// The trace's tier field, without a key.
	reqs = append(reqs, burst(2*time.Second, 1, trace.Request{Client: "10.0.0.6", Method: "GET", Route: "/products/9", Tier: "pro"})...)
	// PUT is shadow fixed-window 5/1m: all 8 served, 3 would-be denials.
	reqs = append(reqs, burst(3*time.Second, 8, trace.Request{Client: "10.0.0.5", Method: "PUT", Route: "/products/7"})...)
	// No rule matches.
	reqs = append(reqs, burst(4*time.Second, 1, trace.Request{Client: "10.0.0.7", Method: "POST", Route: "/login"})...)
	sortByTime(reqs)

	l, err := NewLimits(issueFile(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reqs {
		l.Add(r)
	}
	got := l.Result()
	if got.Requests != 395 || got.Unmatched != 1 || got.Unidentified != 0 || got.Clients != 6 {
		t.Errorf("requests %d unmatched %d unidentified %d clients %d; want 395, 1, 0, 6", got.Requests, got.Unmatched, got.Unidentified, got.Clients)
	}
	// The span is 59 s: 10.0.0.1 (50 requests) and 10.0.0.3 (25) stayed within
	// 10/1s and 50/1h over it, and were refused: well-behaved but refused, 25
	// denials. 10.0.0.4 is over 50/1h, but never got more than 50 in an hour.
	want := []RuleResult{
		{Rule: 0, Tier: "free", Requests: 135, Allowed: 100, Denied: 35, Clients: 3, DeniedBy: []int64{25, 10}, ShadowBy: []int64{},
			WellBehavedRefused: &Who{Clients: 2, Requests: 25}, AbuseAdmitted: &Who{}},
		{Rule: 1, Tier: "pro", Requests: 251, Allowed: 201, Denied: 50, Clients: 2, DeniedBy: []int64{50}, ShadowBy: []int64{},
			WellBehavedRefused: &Who{Clients: 1, Requests: 50}, AbuseAdmitted: &Who{}},
		{Rule: 2, Tier: "free", Requests: 8, Allowed: 8, ShadowDenied: 3, Clients: 1, DeniedBy: []int64{}, ShadowBy: []int64{3}},
	}
	if !reflect.DeepEqual(got.Rules, want) {
		t.Errorf("rules:\n got %s\nwant %s", show(got.Rules), show(want))
	}
}

func show(rs []RuleResult) string {
	s := ""
	for _, r := range rs {
		s += fmt.Sprintf("\n  %+v wbr %+v abuse %+v", r, r.WellBehavedRefused, r.AbuseAdmitted)
	}
	return s
}

// TestLimitsAbuseAdmitted: a client over the hour's rate that still got more than
// its L admitted in one hour (a sliding counter's late start) is abuse admitted.
func TestLimitsAbuseAdmitted(t *testing.T) {
	t.Parallel()
	file, err := policy.Parse("abuse.yaml", []byte(`identity: ip
rules:
  - match: {route: "/products/{id}"}
    limits:
      - {name: per-minute, algorithm: fixed-window, limit: 10, window: 1m}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewLimits(file)
	if err != nil {
		t.Fatal(err)
	}
	// 15 at 0:59 and 15 at 1:00, then nothing until 5:00: 20 admitted within a
	// second; over the span of 4 min 1 s (40 allowed) its 31 requests are within.
	// The second client sends 15 at 0:59, 15 at 1:00 and 30 more at 1:30: 60 in
	// 61 s, over 10 a minute over the span, and 20 admitted in one minute.
	r := trace.Request{Method: "GET", Route: "/products/1"}
	a, b := r, r
	a.Client, b.Client = "a", "b"
	var reqs []trace.Request
	reqs = append(reqs, burst(59*time.Second, 15, a)...)
	reqs = append(reqs, burst(59*time.Second, 15, b)...)
	reqs = append(reqs, burst(60*time.Second, 15, a)...)
	reqs = append(reqs, burst(60*time.Second, 15, b)...)
	reqs = append(reqs, burst(90*time.Second, 30, b)...)
	reqs = append(reqs, burst(300*time.Second, 1, a)...)
	for _, r := range sortByTime(reqs) {
		l.Add(r)
	}
	got := l.Result().Rules[0]
	if *got.WellBehavedRefused != (Who{Clients: 1, Requests: 10}) || *got.AbuseAdmitted != (Who{Clients: 1, Requests: 10}) {
		t.Errorf("well-behaved refused %+v, abuse admitted %+v; want {1 10} and {1 10}", *got.WellBehavedRefused, *got.AbuseAdmitted)
	}
}

// TestLimitsAPIKeyIdentity: with identity api-key, one address with two keys is two
// clients, and a request without a key is not limited but counted apart.
func TestLimitsAPIKeyIdentity(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../policy/testdata/issue.yaml")
	if err != nil {
		t.Fatal(err)
	}
	data = slices.Concat([]byte("identity: api-key\n"), data[len("identity: ip"):])
	file, err := policy.Parse("keys.yaml", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewLimits(file)
	if err != nil {
		t.Fatal(err)
	}
	get := trace.Request{Client: "10.0.0.1", Method: "GET", Route: "/products/7"}
	k1, k2 := get, get
	k1.Key, k2.Key = "key-a", "key-b"
	for _, r := range sortByTime(slices.Concat(burst(0, 25, k1), burst(0, 25, k2), burst(0, 3, get))) {
		l.Add(r)
	}
	res := l.Result()
	if res.Unidentified != 3 || res.Clients != 2 || len(res.Rules) != 1 || res.Rules[0].Allowed != 40 || res.Rules[0].Denied != 10 {
		t.Errorf("unidentified %d, clients %d, rules %s; want 3, 2, one with 40 allowed and 10 denied", res.Unidentified, res.Clients, show(res.Rules))
	}
}

// keyedTrace is a seeded trace of n requests with API keys: pro and free clients
// (some without a key), reads and writes, in bursts and steadily.
func keyedTrace(seed uint64, n int) []trace.Request {
	rng := rand.New(rand.NewPCG(seed, 7))
	type client struct {
		addr, key string
		put       bool
	}
	var clients []client
	for i := range 40 {
		c := client{addr: "10.1.0." + strconv.Itoa(i+1), put: i%5 == 0}
		switch i % 4 {
		case 0:
			c.key = "key-pro-1"
		case 1:
			c.key = "key-free-" + strconv.Itoa(i)
		case 2:
			c.addr = fmt.Sprintf("2001:db8:%x::%d", i, i)
		}
		clients = append(clients, c)
	}
	var out []trace.Request
	t := limitsT0 + 57*time.Second.Microseconds()
	for len(out) < n {
		t += rng.Int64N(40_000)
		c := clients[rng.IntN(len(clients))]
		if rng.IntN(3) == 0 {
			c = clients[0] // a busy pro client
		}
		m, route := "GET", "/products/"+strconv.Itoa(1+rng.IntN(50))
		if c.put && rng.IntN(2) == 0 {
			m = "PUT"
		}
		if rng.IntN(40) == 0 {
			m, route = "POST", "/login"
		}
		for range 1 + rng.IntN(4)*rng.IntN(8) {
			out = append(out, trace.Request{Time: t, Client: c.addr, Method: m, Route: route, Key: c.key})
		}
	}
	return out[:n]
}

// TestLimitsVirtualEqualsRedis: a policy file's simulated decisions are the
// decisions MultiRedis makes on a real redis-server at the same virtual times, for
// the enforced and the shadow limits, request for request and field for field.
func TestLimitsVirtualEqualsRedis(t *testing.T) {
	reqs := keyedTrace(5, 4000)
	file := issueFile(t)
	b := redistest.Standalone(t)
	ctx := context.Background()
	keys := algorithms.MustKeyspace("simlimits")
	type group struct{ enforce, shadow *algorithms.MultiRedis }
	groups := make([]group, len(file.Rules))
	for i := range file.Rules {
		r := &file.Rules[i]
		var err error
		if ls := r.Enforced(); len(ls) > 0 {
			if groups[i].enforce, err = algorithms.NewMultiRedis(b.Client, keys, r.Name, ls); err != nil {
				t.Fatal(err)
			}
		}
		if ls := r.Shadowed(); len(ls) > 0 {
			if groups[i].shadow, err = algorithms.NewMultiRedis(b.Client, keys, r.Name, ls); err != nil {
				t.Fatal(err)
			}
		}
	}
	l, err := NewLimits(file)
	if err != nil {
		t.Fatal(err)
	}
	var checked, denied, shadowDenied int
	l.OnDecision = func(rule int, id string, at int64, enforced, shadow *algorithms.MultiDecision) {
		checked++
		for _, c := range []struct {
			m *algorithms.MultiRedis
			d *algorithms.MultiDecision
		}{{groups[rule].enforce, enforced}, {groups[rule].shadow, shadow}} {
			if (c.m == nil) != (c.d == nil) {
				t.Fatalf("rule %d: limiter %v, decision %v", rule, c.m != nil, c.d != nil)
			}
			if c.m == nil {
				continue
			}
			real, err := c.m.AllowAt(ctx, id, time.UnixMicro(at))
			if err != nil {
				t.Fatal(err)
			}
			if !sameMulti(real, *c.d) {
				t.Fatalf("request %d, rule %s, %s at %d: Redis %+v, simulate %+v", checked, file.Rules[rule].Name, id, at, real, *c.d)
			}
		}
		if enforced != nil && !enforced.Allowed {
			denied++
		}
		if shadow != nil && !shadow.Allowed {
			shadowDenied++
		}
	}
	for _, r := range reqs {
		l.Add(r)
	}
	res := l.Result()
	tiers := map[string]bool{}
	for _, r := range res.Rules {
		tiers[r.Tier] = true
	}
	if checked < 3000 || denied == 0 || shadowDenied == 0 || res.Unmatched == 0 || !tiers["pro"] || !tiers["free"] {
		t.Errorf("%d checked, %d denied, %d shadow denials, %d unmatched, tiers %v: the trace must exercise all of them", checked, denied, shadowDenied, res.Unmatched, tiers)
	}
}

func sameMulti(a, b algorithms.MultiDecision) bool {
	if a.Allowed != b.Allowed || a.DeniedBy != b.DeniedBy || a.RetryAfter != b.RetryAfter ||
		a.Delay != b.Delay || a.TimeMicros != b.TimeMicros || len(a.Limits) != len(b.Limits) {
		return false
	}
	for i := range a.Limits {
		if a.Limits[i] != b.Limits[i] {
			return false
		}
	}
	return true
}
