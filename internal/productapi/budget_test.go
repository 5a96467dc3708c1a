package productapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/productapi"
	"github.com/ratelab/ratelab/internal/redisconn"
	"github.com/ratelab/ratelab/internal/redistest"
	"github.com/ratelab/ratelab/internal/wire"
)

// budgetNode is one API server built as ratelab serve builds it: a Redis client of
// its own with serve's pool size and timeouts, the health probe, the default budget.
type budgetNode struct {
	name string
	mode productapi.FailMode
	url  string
	reg  *prometheus.Registry
	logs *lockedBuffer
}

func newBudgetNode(t *testing.T, b redistest.Backend, prefix string, mode productapi.FailMode, lim func(*redisconn.Conn) algorithms.Limiter) budgetNode {
	t.Helper()
	conn := openConn(t, b)
	reg := prometheus.NewRegistry()
	logs := &lockedBuffer{}
	a := newAPI(t, productapi.Config{
		Limiter: lim(conn), CheckTimeout: productapi.DefaultCheckTimeout, OnLimiterError: mode,
		Health: productapi.RedisHealth(conn, algorithms.MustKeyspace(prefix)), MaxChecksInFlight: conn.PoolSize(),
		Registerer: reg, Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	return budgetNode{name: "fail-" + string(mode), mode: mode, url: serve(t, a.Handler()).URL, reg: reg, logs: logs}
}

// decisions sums ratelab_http_requests_total by decision.
func decisions(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	return sumByLabel(t, reg, "ratelab_http_requests_total", "decision")
}

// sumByLabel sums the counter name of reg by the values of one of its labels.
func sumByLabel(t *testing.T, reg *prometheus.Registry, name, label string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label {
					out[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

// checked is one answer of a limited route: its status, what Server-Timing says, and
// when the client sent it and had the answer.
type checked struct {
	code           int
	took           time.Duration
	outcome        string
	sent, answered time.Time
	waited         time.Duration // the process's threads' wait for a CPU meanwhile
}

func getChecked(t *testing.T, url string) checked {
	t.Helper()
	sent, before := time.Now(), runDelay()
	code, h, _ := get(t, http.MethodGet, url+"/products/1", nil)
	answered, waited := time.Now(), max(0, runDelay()-before)
	took, outcome, ok := wire.ParseServerTiming(h.Values("Server-Timing"))
	if code != 0 && !ok {
		t.Errorf("GET %s: %d without a Server-Timing of the check", url, code)
	}
	return checked{code: code, took: took, outcome: outcome, sent: sent, answered: answered, waited: waited}
}

func getHealth(t *testing.T, url string) (int, productapi.Health) {
	t.Helper()
	code, _, body := get(t, http.MethodGet, url+"/healthz", nil)
	var h productapi.Health
	if err := json.Unmarshal(body, &h); err != nil {
		t.Errorf("/healthz: %d %q is not its JSON: %v", code, body, err)
	}
	return code, h
}

// lateness watches how late this process's timers fire: a goroutine sleeps 1ms again
// and again and records by how much each wake-up missed. On a busy machine the OS or
// the Go scheduler may not run the process for tens of milliseconds; a check whose
// deadline fell in such a gap answers late by as much, through no fault of its own.
type lateness struct {
	mu      sync.Mutex
	samples []lateSample
	stop    chan struct{}
	done    chan struct{}
}

// lateSample is one missed wake-up: the process did not run in [from, to].
type lateSample struct {
	from, to time.Time
}

func watchLateness(t *testing.T) *lateness {
	l := &lateness{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		const tick = time.Millisecond
		for {
			select {
			case <-l.stop:
				return
			default:
			}
			before := time.Now()
			time.Sleep(tick)
			now := time.Now()
			// A wake-up up to a millisecond late is ordinary timer slack.
			if now.Sub(before) > 2*tick {
				l.mu.Lock()
				l.samples = append(l.samples, lateSample{from: before.Add(tick), to: now})
				l.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { close(l.stop); <-l.done })
	return l
}

// runDelay is how long this process's threads have waited for a CPU, in all, by
// Linux's /proc/self/task/*/schedstat (0 where there is none). The ticker alone misses
// a thread the OS keeps waiting while the ticker's thread runs.
func runDelay() time.Duration {
	tasks, _ := os.ReadDir("/proc/self/task")
	var sum int64
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + task.Name() + "/schedstat")
		if f := strings.Fields(string(b)); err == nil && len(f) >= 2 {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			sum += n
		}
	}
	return time.Duration(sum)
}

// stolen is how long the process demonstrably did not run within [from, to]: the
// part of each missed wake-up that overlaps it.
func (l *lateness) stolen(from, to time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var sum time.Duration
	for _, s := range l.samples {
		lo, hi := s.from, s.to
		if lo.Before(from) {
			lo = from
		}
		if hi.After(to) {
			hi = to
		}
		if hi.After(lo) {
			sum += hi.Sub(lo)
		}
	}
	return sum
}

// TestStall: while the test's own redis-server is stopped (SIGSTOP) and, separately,
// while it pauses every client (CLIENT PAUSE ALL), every check answers within
// --check-timeout + 10ms by its own Server-Timing, on a fail-open and a fail-closed
// node side by side; /healthz answers within its budget and says degraded or failing,
// each node logs one outage, and checks succeed again as soon as Redis answers.
func TestStall(t *testing.T) {
	b := redistest.Standalone(t)
	lim := func(c *redisconn.Conn) algorithms.Limiter {
		return newLimiter(t, c.Client, "stall", algorithms.TokenBucket, algorithms.Policy{Limit: 1_000_000, Window: time.Second})
	}
	nodes := []budgetNode{
		newBudgetNode(t, b, "stall", productapi.FailOpen, lim),
		newBudgetNode(t, b, "stall", productapi.FailClosed, lim),
	}
	const budget = productapi.DefaultCheckTimeout
	const tolerance = 10 * time.Millisecond
	const stall = 2 * time.Second
	for _, n := range nodes {
		if c := getChecked(t, n.url); c.code != http.StatusOK || c.outcome != wire.CheckAllowed {
			t.Fatalf("%s before any fault: %+v", n.name, c)
		}
	}

	faults := []struct {
		name         string
		start, ended func()
	}{
		{name: "SIGSTOP", start: b.Server.Suspend, ended: b.Server.Resume},
		{name: "CLIENT PAUSE", start: func() {
			if err := b.Client.Do(context.Background(), "CLIENT", "PAUSE", stall.Milliseconds(), "ALL").Err(); err != nil {
				t.Fatalf("CLIENT PAUSE: %v", err)
			}
		}, ended: func() {}},
	}
	for round, f := range faults {
		before := make([]map[string]float64, len(nodes))
		for i, n := range nodes {
			before[i] = decisions(t, n.reg)
		}
		late := watchLateness(t)
		f.start()
		stalled := time.Now()
		var mu sync.Mutex
		answers := make([][]checked, len(nodes))
		var wg sync.WaitGroup
		for i, n := range nodes {
			for range 4 {
				wg.Go(func() {
					for time.Since(stalled) < stall {
						c := getChecked(t, n.url)
						mu.Lock()
						answers[i] = append(answers[i], c)
						mu.Unlock()
					}
				})
			}
			wg.Go(func() {
				sent, before := time.Now(), runDelay()
				code, h := getHealth(t, n.url)
				want, wantCode := productapi.HealthDegraded, http.StatusOK
				if n.mode == productapi.FailClosed {
					want, wantCode = productapi.HealthFailing, http.StatusServiceUnavailable
				}
				took := time.Duration(h.TookMillis * float64(time.Millisecond))
				limit := productapi.DefaultHealthTimeout + tolerance + max(late.stolen(sent, time.Now()), runDelay()-before)
				if code != wantCode || h.Status != want || !strings.Contains(h.Reason, "timeout") || took > limit {
					t.Errorf("%s: %s: /healthz %d %+v; want %d %q for a timeout within %s", f.name, n.name, code, h, wantCode, want, limit)
				}
				t.Logf("%s: %s: /healthz %d %s in %s (budget %s)", f.name, n.name, code, h.Status, took, productapi.DefaultHealthTimeout)
				if strings.Contains(fmt.Sprint(h), b.Addrs[0]) {
					t.Errorf("/healthz names the Redis address: %+v", h)
				}
			})
		}
		wg.Wait()
		f.ended()
		resumed := time.Now()

		for i, n := range nodes {
			var slowest, worstLate time.Duration
			excused := 0
			for _, c := range answers[i] {
				switch {
				case c.code == http.StatusOK && (n.mode == productapi.FailOpen || c.outcome == wire.CheckAllowed),
					c.code == http.StatusServiceUnavailable:
				default:
					t.Errorf("%s: %s: status %d (%s) during the stall", f.name, n.name, c.code, c.outcome)
				}
				slowest = max(slowest, c.took)
				if c.took <= budget+tolerance {
					continue
				}
				// Only time the process demonstrably did not run while this request
				// was in flight excuses a late answer.
				gap := max(late.stolen(c.sent, c.answered), c.waited)
				worstLate = max(worstLate, gap)
				if c.took > budget+tolerance+gap {
					t.Errorf("%s: %s: a check answered %d after %s (Server-Timing); the budget is %s + %s (the process did not run for %s meanwhile)",
						f.name, n.name, c.code, c.took, budget, tolerance, gap)
				}
				excused++
			}
			if excused > 0 {
				t.Logf("%s: %s: %d checks over budget + %s, each by less than the time the process did not run meanwhile (at most %s)",
					f.name, n.name, excused, tolerance, worstLate)
			}
			d := decisions(t, n.reg)
			failMode := "fail-" + string(n.mode)
			t.Logf("%s: %s: %d checks during the stall, slowest %s (budget %s); decisions: %s %v, timeout %v, overloaded %v",
				f.name, n.name, len(answers[i]), slowest, budget, failMode, d[failMode]-before[i][failMode],
				d["timeout"]-before[i]["timeout"], d["overloaded"]-before[i]["overloaded"])
			if len(answers[i]) < 10 {
				t.Errorf("%s: %s: only %d checks answered during a %s stall", f.name, n.name, len(answers[i]), stall)
			}
			if d[failMode] == before[i][failMode] {
				t.Errorf("%s: %s: no request was decided by the fail mode: no outage declared during the stall", f.name, n.name)
			}
		}

		// Recovery: poll until each node's check succeeds again.
		for _, n := range nodes {
			var c checked
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
				if c = getChecked(t, n.url); c.outcome == wire.CheckAllowed {
					break
				}
			}
			if c.code != http.StatusOK || c.outcome != wire.CheckAllowed {
				t.Fatalf("%s: %s: no successful check within 5s of the end of the stall: %+v", f.name, n.name, c)
			}
			t.Logf("%s: %s: first successful check %s after the stall ended", f.name, n.name, time.Since(resumed).Round(time.Millisecond))
			if code, h := getHealth(t, n.url); code != http.StatusOK || h.Status != productapi.HealthOK || h.Outage {
				t.Errorf("%s: %s: /healthz after the stall: %d %+v; want ok and no outage", f.name, n.name, code, h)
			}
			logs := n.logs.String()
			if got := strings.Count(logs, "rate limiter unavailable"); got != round+1 {
				t.Errorf("%s: %s: %d outages logged in %d stalls; want one per stall:\n%s", f.name, n.name, got, round+1, logs)
			}
			if got := strings.Count(logs, "rate limiter available again"); got != round+1 {
				t.Errorf("%s: %s: %d ends of outage logged in %d stalls; want one per stall:\n%s", f.name, n.name, got, round+1, logs)
			}
		}
	}
}

// TestBurst: three nodes on one redis-server, each with a client as serve opens it
// (serve's pool), take 2,000 requests of one client at once, five times over. The pool
// is far smaller than the burst, so checks queue for it, and with serve's 50ms budget
// many cannot start in time on a test machine: those are 503s, never 200s, nothing is
// admitted beyond the limit and nothing fails open while Redis is healthy. Given a
// budget the machine can keep (as a production node keeps 50ms), exactly B (gcra,
// token-bucket) or L (fixed-window, sliding-log) are admitted; under serve's budget a
// check that timed out after Redis decided may have used a request its client never
// got, so there the count is at most that.
func TestBurst(t *testing.T) {
	b := redistest.Standalone(t)
	const (
		nodes    = 3
		requests = 2000
		runs     = 5
		limit    = 100
	)
	// A day's window: no fixed window ends and no token refills during a burst.
	p := algorithms.Policy{Limit: limit, Window: 24 * time.Hour, Burst: limit}
	budgets := []struct {
		name   string
		budget time.Duration
		exact  bool
	}{
		{"serve's budget", productapi.DefaultCheckTimeout, false},
		{"a budget this machine keeps", 2 * time.Second, true},
	}
	identity := 0
	for _, alg := range []string{algorithms.GCRA, algorithms.TokenBucket, algorithms.FixedWindow, algorithms.SlidingLog} {
		for _, bud := range budgets {
			var hs []http.Handler
			var regs []*prometheus.Registry
			for range nodes {
				conn := openConn(t, b)
				reg := prometheus.NewRegistry()
				a := newAPI(t, productapi.Config{
					Limiter: newLimiter(t, conn.Client, "burst", alg, p), CheckTimeout: bud.budget,
					OnLimiterError: productapi.FailOpen, MaxChecksInFlight: conn.PoolSize(),
					Health:         productapi.RedisHealth(conn, algorithms.MustKeyspace("burst")),
					TrustedProxies: mustPrefixes(t, "127.0.0.0/8"), Registerer: reg,
				})
				hs, regs = append(hs, a.Handler()), append(regs, reg)
			}
			want := p.Limit
			if alg == algorithms.GCRA || alg == algorithms.TokenBucket {
				want = p.EffectiveBurst()
			}
			var admitted, refused []int64
			for run := range runs {
				identity++
				client := fmt.Sprintf("X-Forwarded-For: 203.0.113.%d", identity)
				codes := make([]int, requests)
				outcomes := make([]string, requests)
				start := make(chan struct{})
				var wg sync.WaitGroup
				for i := range requests {
					wg.Go(func() {
						<-start
						w := do(hs[i%nodes], "GET", "/products/1", "127.0.0.1:4000", client)
						_, outcomes[i], _ = wire.ParseServerTiming(w.Header().Values("Server-Timing"))
						codes[i] = w.Code
					})
				}
				close(start)
				wg.Wait()
				var allowed, denied, unavailable, failOpen int64
				for i, code := range codes {
					switch {
					case code == http.StatusOK && outcomes[i] == wire.CheckAllowed:
						allowed++
					case code == http.StatusOK:
						failOpen++
					case code == http.StatusTooManyRequests:
						denied++
					case code == http.StatusServiceUnavailable:
						unavailable++
					default:
						t.Errorf("%s, %s, run %d: status %d (%s)", alg, bud.name, run+1, code, outcomes[i])
					}
				}
				if failOpen != 0 || allowed > want || (bud.exact && allowed != want) {
					t.Errorf("%s, %s (%s), run %d: admitted %d, fail-open %d; want %s %d admitted and none failing open (Redis is healthy)",
						alg, bud.name, bud.budget, run+1, allowed, failOpen, map[bool]string{true: "exactly", false: "at most"}[bud.exact], want)
				}
				t.Logf("%s, %s (%s), run %d: admitted %d, denied %d, 503 %d, fail-open %d", alg, bud.name, bud.budget, run+1, allowed, denied, unavailable, failOpen)
				admitted, refused = append(admitted, allowed), append(refused, unavailable)
			}
			var failModes, overloaded, timedOut float64
			for _, reg := range regs {
				d := decisions(t, reg)
				failModes += d["fail-open"] + d["fail-closed"]
				overloaded += d["overloaded"]
				timedOut += d["timeout"]
			}
			if failModes != 0 {
				t.Errorf("%s, %s: /metrics counts %v fail-mode decisions; want 0", alg, bud.name, failModes)
			}
			t.Logf("%s, %s (%s): admitted per run %v (want %d), 503 per run %v (in all: %v overloaded, %v timeout), fail-open 0",
				alg, bud.name, bud.budget, admitted, want, refused, overloaded, timedOut)
		}
	}
}

// TestHealthOutOfMemory: with Redis at maxmemory and nothing to evict, PING still
// answers but every limiter write is refused. /healthz says so, in words, on both a
// fail-open (degraded) and a fail-closed (failing, 503) node, and the log calls it
// what it is rather than an unreachable Redis.
func TestHealthOutOfMemory(t *testing.T) {
	b := redistest.Standalone(t)
	lim := func(c *redisconn.Conn) algorithms.Limiter {
		return newLimiter(t, c.Client, "oom", algorithms.TokenBucket, algorithms.Policy{Limit: 1000, Window: time.Second})
	}
	nodes := []budgetNode{
		newBudgetNode(t, b, "oom", productapi.FailOpen, lim),
		newBudgetNode(t, b, "oom", productapi.FailClosed, lim),
	}
	for _, n := range nodes {
		if code, h := getHealth(t, n.url); code != http.StatusOK || h.Status != productapi.HealthOK {
			t.Fatalf("%s before the fault: /healthz %d %+v", n.name, code, h)
		}
	}
	ctx := context.Background()
	admin := b.Client
	if err := admin.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
		t.Fatal(err)
	}
	if err := admin.Set(ctx, "oom-test:{big}", strings.Repeat("x", 4<<20), time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if err := admin.ConfigSet(ctx, "maxmemory", "1mb").Err(); err != nil {
		t.Fatal(err)
	}
	if err := admin.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING with Redis out of memory: %v; want PONG (PING is not enough for health)", err)
	}
	for _, n := range nodes {
		want, wantCode := productapi.HealthDegraded, http.StatusOK
		if n.mode == productapi.FailClosed {
			want, wantCode = productapi.HealthFailing, http.StatusServiceUnavailable
		}
		code, h := getHealth(t, n.url)
		if code != wantCode || h.Status != want || h.Reason != "out of memory" || h.Redis != "failing" {
			t.Errorf("%s, Redis out of memory: /healthz %d %+v; want %d %q with the reason \"out of memory\"", n.name, code, h, wantCode, want)
		}
		// A genuine Redis error: the fail mode decides at once.
		c := getChecked(t, n.url)
		if wantCheck := map[productapi.FailMode]int{productapi.FailOpen: http.StatusOK, productapi.FailClosed: http.StatusServiceUnavailable}[n.mode]; c.code != wantCheck || c.outcome != wire.CheckError {
			t.Errorf("%s, Redis out of memory: a check answered %d (%s); want %d from the fail mode", n.name, c.code, c.outcome, wantCheck)
		}
	}
	for _, n := range nodes {
		// The outage is declared by the probe the failed check started.
		var logs string
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if logs = n.logs.String(); strings.Contains(logs, "rate limiter unavailable") {
				break
			}
		}
		if !strings.Contains(logs, "out of memory") || strings.Contains(logs, "cannot reach") {
			t.Errorf("%s: the log does not call the OOM what it is:\n%s", n.name, logs)
		}
	}
	if err := admin.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if code, h := getHealth(t, n.url); code != http.StatusOK || h.Status != productapi.HealthOK {
			t.Errorf("%s with memory back: /healthz %d %+v; want ok", n.name, code, h)
		}
	}
}
