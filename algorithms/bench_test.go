package algorithms_test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/redistest"
)

// The benchmarks run every limiter against a redis-server of their own (never a server
// that happens to listen on 6379), serially over one connection and in parallel over
// benchConns() connections, and report checks/s and per-check latency percentiles:
//
//	go test ./algorithms -run '^$' -bench . -benchtime 2s
//
// RATELAB_BENCH_CONNS sets the connection (and goroutine) count of the parallel runs.
// TestRedisBenchmarkComparison (RATELAB_BENCH_COMPARE=1) sets the parallel figures
// beside redis-benchmark's for the same script on the same server; scripts/bench.sh
// runs both.

// benchPolicy is the policy of every benchmark but the large sliding logs: 10/s,
// burst 20, as an API would give one client (and as redis_rate's example has it).
var benchPolicy = algorithms.Policy{Limit: 10, Window: time.Second, Burst: 20}

// manyClients is how many identities the many-clients benchmarks spread their checks
// over, round robin: each sees well under 10 checks a second, so nearly every check
// is allowed and the script takes its writing path. The one-client benchmarks send
// every check for one identity: nearly every check is denied, the reading path.
const manyClients = 1 << 16

var identities = func() []string {
	ids := make([]string, manyClients)
	for i := range ids {
		ids[i] = fmt.Sprintf("10.0.%d.%d", i>>8, i&0xff)
	}
	return ids
}()

// benchConns is the connection count of the parallel benchmarks, and their number of goroutines.
func benchConns() int {
	if n, err := strconv.Atoi(os.Getenv("RATELAB_BENCH_CONNS")); err == nil && n > 0 {
		return n
	}
	return 16
}

// check makes one limiter call for the i-th request and says whether it was allowed.
type check func(ctx context.Context, i int) (bool, error)

// benchCase is one limiter under one policy and one traffic pattern.
type benchCase struct {
	name      string
	algorithm string // "" for redis_rate
	policy    algorithms.Policy
	clients   int // manyClients or 1
	new       func(rdb *redis.Client) check
}

func traffic(clients int) string {
	if clients == 1 {
		return "one-client"
	}
	return "many-clients"
}

func ratelabCase(algorithm string, p algorithms.Policy, clients int) benchCase {
	name := algorithm
	if p != benchPolicy {
		name += fmt.Sprintf("-L%d", p.Limit)
	}
	return benchCase{name: name + "/" + traffic(clients), algorithm: algorithm, policy: p, clients: clients,
		new: func(rdb *redis.Client) check {
			lim, err := algorithms.NewRedis(rdb, algorithms.MustKeyspace("bench"), algorithm, p)
			if err != nil {
				panic(err)
			}
			return func(ctx context.Context, i int) (bool, error) {
				d, err := lim.Allow(ctx, identities[i%clients])
				return d.Allowed, err
			}
		}}
}

// redisRateCase is go-redis/redis_rate's GCRA under benchPolicy, for comparison with ours.
func redisRateCase(clients int) benchCase {
	limit := redis_rate.Limit{Rate: int(benchPolicy.Limit), Burst: int(benchPolicy.Burst), Period: benchPolicy.Window}
	return benchCase{name: "redis_rate-gcra/" + traffic(clients), policy: benchPolicy, clients: clients,
		new: func(rdb *redis.Client) check {
			lim := redis_rate.NewLimiter(rdb)
			return func(ctx context.Context, i int) (bool, error) {
				res, err := lim.Allow(ctx, identities[i%clients], limit)
				if err != nil {
					return false, err
				}
				return res.Allowed > 0, nil
			}
		}}
}

func benchCases() []benchCase {
	var cases []benchCase
	for _, name := range algorithms.Names() {
		for _, clients := range []int{manyClients, 1} {
			cases = append(cases, ratelabCase(name, benchPolicy, clients))
		}
		if name == algorithms.GCRA {
			cases = append(cases, redisRateCase(manyClients), redisRateCase(1))
		}
	}
	// One client against a large L keeps the log at up to L entries.
	for _, l := range []int64{1000, 10000} {
		cases = append(cases, ratelabCase(algorithms.SlidingLog, algorithms.Policy{Limit: l, Window: time.Second}, 1))
	}
	return cases
}

// BenchmarkRedis runs each limiter serially and in parallel against one redis-server.
func BenchmarkRedis(b *testing.B) {
	srv := redistest.StartServer(b)
	conns := benchConns()
	for _, c := range benchCases() {
		b.Run(c.name+"/serial", func(b *testing.B) {
			rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, PoolSize: 1})
			defer rdb.Close()
			benchSerial(b, c.new(rdb))
		})
		b.Run(fmt.Sprintf("%s/parallel-c%d", c.name, conns), func(b *testing.B) {
			rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, PoolSize: conns})
			defer rdb.Close()
			benchParallel(b, conns, c.new(rdb))
		})
	}
}

// latencies records per-check latencies, one histogram per goroutine, merged at the
// end, and how many checks were allowed: the share tells which path of a script ran.
type latencies struct {
	mu      sync.Mutex
	all     *hdrhistogram.Histogram
	allowed int64
}

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(10*time.Second), 3) // ns
}

func (l *latencies) merge(h *hdrhistogram.Histogram, allowed int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all.Merge(h)
	l.allowed += allowed
}

// report sets checks/s, p50-µs and p99-µs beside ns/op.
func (l *latencies) report(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
	b.ReportMetric(float64(l.all.ValueAtQuantile(50))/1e3, "p50-µs")
	b.ReportMetric(float64(l.all.ValueAtQuantile(99))/1e3, "p99-µs")
	b.ReportMetric(100*float64(l.allowed)/float64(b.N), "allowed-%")
}

// warm makes one check, so the script is loaded before the clock starts.
func warm(b *testing.B, c check) {
	b.Helper()
	if _, err := c(context.Background(), 0); err != nil {
		b.Fatal(err)
	}
}

func benchSerial(b *testing.B, c check) {
	warm(b, c)
	ctx := context.Background()
	lat := &latencies{all: newHistogram()}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		ok, err := c(ctx, i)
		if err != nil {
			b.Fatal(err)
		}
		_ = lat.all.RecordValue(int64(time.Since(start)))
		if ok {
			lat.allowed++
		}
	}
	b.StopTimer()
	lat.report(b)
}

// benchParallel runs conns goroutines (rounded up to a multiple of GOMAXPROCS) over a
// client with conns connections; the goroutines take their requests' numbers from one
// counter, so the identities go round robin as in the serial run.
func benchParallel(b *testing.B, conns int, c check) {
	warm(b, c)
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((conns + procs - 1) / procs)
	lat := &latencies{all: newHistogram()}
	var seq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		h := newHistogram()
		var allowed int64
		for pb.Next() {
			start := time.Now()
			ok, err := c(ctx, int(seq.Add(1)))
			if err != nil {
				b.Error(err)
				return
			}
			_ = h.RecordValue(int64(time.Since(start)))
			if ok {
				allowed++
			}
		}
		lat.merge(h, allowed)
	})
	b.StopTimer()
	lat.report(b)
}

// TestScriptSource checks that ScriptSource is the very script the limiters run: after
// one check, Redis knows the SHA-1 of ScriptSource's text. Without that, the
// redis-benchmark comparison would measure some other script.
func TestScriptSource(t *testing.T) {
	b := redistest.Standalone(t)
	ctx := context.Background()
	for _, name := range algorithms.Names() {
		lim, err := algorithms.NewRedis(b.Client, algorithms.MustKeyspace("src"), name, benchPolicy)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := lim.Allow(ctx, "10.0.0.1"); err != nil {
			t.Fatal(err)
		}
		sum := sha1.Sum([]byte(algorithms.ScriptSource(name)))
		sha := hex.EncodeToString(sum[:])
		exists, err := b.Client.ScriptExists(ctx, sha).Result()
		if err != nil {
			t.Fatal(err)
		}
		if !exists[0] {
			t.Errorf("%s: Redis does not know the SHA-1 of ScriptSource (%s): it is not the script the limiter ran", name, sha)
		}
	}
	if algorithms.ScriptSource("no-such-algorithm") != "" {
		t.Error(`ScriptSource("no-such-algorithm") is not empty`)
	}
}

// TestRedisBenchmarkComparison (RATELAB_BENCH_COMPARE=1) measures, on one
// redis-server, each algorithm's script driven by redis-benchmark (EVALSHA of
// ScriptSource, over the same connection count and the same number of clients) and by
// ratelab's parallel benchmark, and logs the two side by side. Run it with -v.
// RATELAB_BENCH_REQUESTS sets redis-benchmark's request count (default 200000).
func TestRedisBenchmarkComparison(t *testing.T) {
	if os.Getenv("RATELAB_BENCH_COMPARE") != "1" {
		t.Skip("a measurement, not a test: set RATELAB_BENCH_COMPARE=1 (see scripts/bench.sh)")
	}
	tool, err := exec.LookPath("redis-benchmark")
	if err != nil {
		t.Skip("redis-benchmark is not on PATH")
	}
	requests := 200000
	if n, err := strconv.Atoi(os.Getenv("RATELAB_BENCH_REQUESTS")); err == nil && n > 0 {
		requests = n
	}
	srv := redistest.StartServer(t)
	conns := benchConns()
	ctx := context.Background()
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer admin.Close()

	var table bytes.Buffer
	w := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "case\tredis-benchmark checks/s\tp50 µs\tp99 µs\tserver µs/call\t"+
		"ratelab checks/s\tp50 µs\tp99 µs\tserver µs/call\tallowed %%\tratio\t\n")
	for _, c := range benchCases() {
		rbCols := "-\t-\t-\t-"
		var rb redisBenchmarkResult
		if c.algorithm != "" { // redis_rate's script text is not exported: ratelab's side only
			sha, err := admin.ScriptLoad(ctx, algorithms.ScriptSource(c.algorithm)).Result()
			if err != nil {
				t.Fatal(err)
			}
			args := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(srv.Port), "-c", strconv.Itoa(conns),
				"-n", strconv.Itoa(requests), "-r", strconv.Itoa(c.clients), "--csv",
				"EVALSHA", sha, "1", comparisonKey(c),
				strconv.FormatInt(c.policy.Limit, 10), strconv.FormatInt(c.policy.WindowMicros(), 10),
				strconv.FormatInt(c.policy.EffectiveBurst(), 10), ""}
			if c.algorithm == algorithms.LeakyBucket {
				// Its script takes the max delay too: the limiter's default, the drain time
				// (B-1)·W/L rounded up (under MaxDelayCap for these policies).
				w, l, b := c.policy.WindowMicros(), c.policy.Limit, c.policy.EffectiveBurst()
				args = append(args, strconv.FormatInt(min((b-1)*w+l-1, algorithms.MaxDelayCap.Microseconds()*l)/l, 10))
			}
			resetStats(t, admin)
			toolCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			out, err := exec.CommandContext(toolCtx, tool, args...).Output()
			cancel()
			if err != nil {
				t.Fatalf("%s: redis-benchmark %s: %v", c.name, strings.Join(args, " "), err)
			}
			if rb, err = parseRedisBenchmarkCSV(out); err != nil {
				t.Fatalf("%s: %v in %q", c.name, err, out)
			}
			rbCols = fmt.Sprintf("%.0f\t%.0f\t%.0f\t%.1f", rb.rps, rb.p50ms*1000, rb.p99ms*1000, serverMicrosPerCall(t, admin))
		}

		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, PoolSize: conns})
		chk := c.new(rdb)
		resetStats(t, admin)
		r := testing.Benchmark(func(b *testing.B) { benchParallel(b, conns, chk) })
		server := serverMicrosPerCall(t, admin)
		_ = rdb.Close()
		ours := r.Extra["checks/s"]
		ratio := "-"
		if rb.rps > 0 {
			ratio = fmt.Sprintf("%.2f", ours/rb.rps)
		}
		fmt.Fprintf(w, "%s\t%s\t%.0f\t%.0f\t%.0f\t%.1f\t%.1f\t%s\t\n", c.name, rbCols,
			ours, r.Extra["p50-µs"], r.Extra["p99-µs"], server, r.Extra["allowed-%"], ratio)
	}
	_ = w.Flush()
	t.Logf("%d connections (ratelab: %d goroutines on GOMAXPROCS=%d), redis-benchmark -n %d; "+
		"server µs/call from INFO commandstats (evalsha); ratio = ratelab / redis-benchmark checks/s\n%s",
		conns, conns, runtime.GOMAXPROCS(0), requests, table.String())
}

// resetStats zeroes the server's INFO commandstats.
func resetStats(t *testing.T, rdb *redis.Client) {
	t.Helper()
	if err := rdb.ConfigResetStat(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
}

// serverMicrosPerCall is the server's mean time in EVALSHA since the last resetStats:
// the script's cost inside Redis, without the network or the client.
func serverMicrosPerCall(t *testing.T, rdb *redis.Client) float64 {
	t.Helper()
	f := infoFields(t, rdb, "commandstats")
	if _, ok := f["cmdstat_evalsha"]; !ok {
		t.Fatalf("commandstats has no evalsha line: %v", f)
	}
	return infoNumber(t, f, "cmdstat_evalsha", "usec_per_call")
}

// comparisonKey is the key redis-benchmark sends for a case: of the same shape as
// the limiter's, over as many identities (__rand_int__ takes -r values).
func comparisonKey(c benchCase) string {
	id := "10.0.0.0"
	if c.clients > 1 {
		id = "10.0.__rand_int__"
	}
	return algorithms.MustKeyspace("rb").Limiter(c.algorithm, c.policy, id)
}

type redisBenchmarkResult struct{ rps, p50ms, p99ms float64 }

// parseRedisBenchmarkCSV reads redis-benchmark --csv: a header naming the columns
// ("rps", "p50_latency_ms", ...), then one row per test.
func parseRedisBenchmarkCSV(out []byte) (redisBenchmarkResult, error) {
	rows, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
	if err != nil || len(rows) < 2 {
		return redisBenchmarkResult{}, fmt.Errorf("unreadable redis-benchmark output (%v)", err)
	}
	col := func(name string) (float64, error) {
		for i, h := range rows[0] {
			if h == name && i < len(rows[len(rows)-1]) {
				return strconv.ParseFloat(rows[len(rows)-1][i], 64)
			}
		}
		return 0, fmt.Errorf("no %q column in redis-benchmark output", name)
	}
	var r redisBenchmarkResult
	if r.rps, err = col("rps"); err != nil {
		return r, err
	}
	if r.p50ms, err = col("p50_latency_ms"); err != nil {
		return r, err
	}
	r.p99ms, err = col("p99_latency_ms")
	return r, err
}
