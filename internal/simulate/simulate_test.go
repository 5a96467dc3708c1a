package simulate

import (
	"fmt"
	"testing"
	"time"

	"github.com/ratelab/ratelab/algorithms"
)

const t0 = int64(1_795_510_800_000_000) // 2026-11-24T09:00:00Z, on a minute's edge

// TestLanesMatchModels checks that each lane decides what the algorithm's model
// decides for each client on its own, whatever the interleaving of clients.
func TestLanesMatchModels(t *testing.T) {
	t.Parallel()
	p := algorithms.Policy{Limit: 5, Window: time.Second, Burst: 8}
	e, err := New(Config{Algorithms: algorithms.Names(), Policies: []algorithms.Policy{p}})
	if err != nil {
		t.Fatal(err)
	}
	models := map[string]map[string]algorithms.Model{}
	want := make([]int64, len(algorithms.Names()))
	for i := range 5000 {
		ts := t0 + int64(i)*37_000
		client := fmt.Sprintf("10.0.0.%d", (i*i+i/3)%7)
		e.Add(ts, client)
		for j, name := range algorithms.Names() {
			if models[name] == nil {
				models[name] = map[string]algorithms.Model{}
			}
			m := models[name][client]
			if m == nil {
				m, _ = algorithms.NewModel(name, p)
				models[name][client] = m
			}
			if m.Allow(ts).Allowed {
				want[j]++
			}
		}
	}
	r := e.Result(3)
	if r.Requests != 5000 || r.Clients != 7 {
		t.Fatalf("result %d requests, %d clients", r.Requests, r.Clients)
	}
	for j, l := range r.Lanes {
		if l.Allowed != want[j] || l.Allowed+l.Denied != 5000 {
			t.Errorf("%s: allowed %d, models %d", l.Algorithm, l.Allowed, want[j])
		}
	}
}

// TestWhoPaid builds the two kinds of client the report names: one within the limit
// over the whole trace but bursty (refused), one far over it that the fixed window
// lets through at 2L around an edge.
func TestWhoPaid(t *testing.T) {
	t.Parallel()
	p := algorithms.Policy{Limit: 10, Window: time.Minute}
	e, err := New(Config{Algorithms: []string{algorithms.FixedWindow, algorithms.SlidingLog}, Policies: []algorithms.Policy{p}})
	if err != nil {
		t.Fatal(err)
	}
	sec := int64(time.Second / time.Microsecond)
	// bursty: 15 requests in one second, then nothing for ten minutes: 1.5 a minute.
	for i := range 15 {
		e.Add(t0+int64(i)*1000, "bursty")
	}
	// abusive: 10 in the last second of a minute, 10 in the first of the next, then
	// 10 a minute for 9 minutes: over 10/min overall.
	for i := range 10 {
		e.Add(t0+59*sec+int64(i)*1000, "abusive")
	}
	for i := range 10 {
		e.Add(t0+60*sec+int64(i)*1000, "abusive")
	}
	for m := int64(2); m <= 10; m++ {
		for i := range 12 {
			e.Add(t0+m*60*sec+int64(i)*1000, "abusive")
		}
	}
	e.Add(t0+11*60*sec, "quiet")
	r := e.Result(10)
	fixed, log := r.Lanes[0], r.Lanes[1]
	if fixed.WellBehavedRefused != (Who{Clients: 1, Requests: 5}) {
		t.Errorf("fixed-window well-behaved refused %+v, want the bursty client's 5 denials", fixed.WellBehavedRefused)
	}
	if fixed.AbuseAdmitted != (Who{Clients: 1, Requests: 10}) || fixed.Burst.PeakInWindow != 20 || fixed.PeakClient != "abusive" {
		t.Errorf("fixed-window abuse admitted %+v, peak %+v by %s; want the abusive client's 20 = L+10", fixed.AbuseAdmitted, fixed.Burst, fixed.PeakClient)
	}
	if log.AbuseAdmitted.Clients != 0 || log.Burst.PeakInWindow != 10 {
		t.Errorf("sliding-log abuse admitted %+v, peak %d; the log never admits more than L", log.AbuseAdmitted, log.Burst.PeakInWindow)
	}
	if len(fixed.Top) != 2 || fixed.Top[0].Client != "abusive" || fixed.Top[1].FirstDenial != t0+10*1000 {
		t.Errorf("top %+v", fixed.Top)
	}
}

// TestNodes: behind a round robin over three per-node limiters one client gets three
// times the limit; hashed by client it gets the limit.
func TestNodes(t *testing.T) {
	t.Parallel()
	p := algorithms.Policy{Limit: 10, Window: time.Second}
	for _, tc := range []struct {
		balancer string
		want     int64
	}{{RoundRobin, 30}, {HashClient, 10}} {
		e, err := New(Config{Algorithms: []string{algorithms.SlidingLog}, Policies: []algorithms.Policy{p}, Nodes: 3, Balancer: tc.balancer})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 100 {
			e.Add(t0+int64(i)*1000, "10.0.0.1")
		}
		if got := e.Result(1).Lanes[0]; got.Allowed != tc.want || got.Burst.PeakInWindow != tc.want {
			t.Errorf("%s: allowed %d, peak %d, want %d", tc.balancer, got.Allowed, got.Burst.PeakInWindow, tc.want)
		}
	}
}

func TestBusiestEdge(t *testing.T) {
	t.Parallel()
	w := int64(1_000_000)
	times := []int64{100, 5*w - 300, 5*w - 200, 5*w + 10, 5*w + 400_000, 9 * w}
	if got := BusiestEdge(times, w); got != 5*w {
		t.Errorf("edge %d, want %d", got, 5*w)
	}
	if BusiestEdge(nil, w) != 0 {
		t.Error("an edge for no times")
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	p := []algorithms.Policy{{Limit: 1, Window: time.Second}}
	for _, c := range []Config{
		{Policies: p},
		{Algorithms: []string{"nope"}, Policies: p},
		{Algorithms: []string{algorithms.GCRA}, Policies: p, Balancer: "random"},
		{Algorithms: []string{algorithms.GCRA}, Policies: []algorithms.Policy{{Limit: 0, Window: time.Second}}},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

// TestAddBatchMatchesAdd: lanes spread over goroutines decide what one goroutine
// deciding request by request decides, with round-robin nodes.
func TestAddBatchMatchesAdd(t *testing.T) {
	t.Parallel()
	cfg := Config{Algorithms: algorithms.Names(), Policies: []algorithms.Policy{{Limit: 4, Window: time.Second}, {Limit: 9, Window: 3 * time.Second, Burst: 2}},
		Nodes: 2, Follow: "10.0.0.3"}
	one, _ := New(cfg)
	cfg.Workers = 3
	batched, _ := New(cfg)
	var times []int64
	var clients []string
	for i := range 20_000 {
		ts := t0 + int64(i)*9_000
		c := fmt.Sprintf("10.0.0.%d", i*7%11)
		one.Add(ts, c)
		times, clients = append(times, ts), append(clients, c)
		if len(times) == 1000 {
			batched.AddBatch(times, clients)
			times, clients = times[:0], clients[:0]
		}
	}
	batched.AddBatch(times, clients)
	a, b := one.Result(5), batched.Result(5)
	if fmt.Sprintf("%+v", a) != fmt.Sprintf("%+v", b) {
		t.Errorf("batched result differs:\n%+v\n%+v", a, b)
	}
}
