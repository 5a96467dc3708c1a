#!/usr/bin/env bash
# bench.sh: measure ratelab's limiters against a redis-server of their own.
#
# 1. go test -bench: every algorithm (and go-redis/redis_rate's GCRA) serially over one
#    connection and in parallel over $RATELAB_BENCH_CONNS connections: checks/s, p50, p99.
# 2. TestRedisBenchmarkComparison: each script under redis-benchmark (EVALSHA of the exact
#    script text, same connection count) beside ratelab's parallel run, on one server.
# 3. BenchmarkBatching: every algorithm from 1, 16, 64 and 256 callers, unbatched, batched
#    (one call of the batch script per round trip) and with batches as pipelines (checks/s,
#    p50, p99, Redis CPU and script µs per check); BenchmarkSerialAgainstBare: a
#    serial check against a bare EVALSHA of the same script, interleaved on one connection.
#
# Each step starts its own redis-server on a free 127.0.0.1 port (internal/redistest) and
# kills it at the end; nothing else is contacted. Each step is bounded by a timeout.
#
# Environment: BENCHTIME (default 2s), COUNT (default 1), RATELAB_BENCH_CONNS (default 16),
# RATELAB_BENCH_REQUESTS (redis-benchmark -n, default 200000), RATELAB_BENCH_INFLIGHT (the
# batcher's round trips in flight, default algorithms.DefaultBatchInFlight).
set -euo pipefail
cd "$(dirname "$0")/.."

benchtime=${BENCHTIME:-2s}
count=${COUNT:-1}
export RATELAB_BENCH_CONNS=${RATELAB_BENCH_CONNS:-16}

for tool in go redis-server redis-benchmark; do
  command -v "$tool" >/dev/null || { echo "bench.sh: $tool is not on PATH" >&2; exit 1; }
done

echo "## machine"
echo "nproc: $(nproc)"
lscpu | head -20
free -h
go version
redis-server --version
echo "uptime at start: $(uptime)"
echo

out=$(mktemp)
trap 'rm -f "$out"' EXIT

echo "## go test -bench (benchtime $benchtime, count $count, parallel over $RATELAB_BENCH_CONNS connections)"
timeout 20m go test ./algorithms -run '^$' -bench '^BenchmarkRedis$' -benchtime "$benchtime" \
  -count "$count" -timeout 19m | tee "$out"
echo
# One row per benchmark: algorithm, traffic, mode, and the median of each metric over
# the COUNT runs.
awk '
  function median(list,   v, n, i, j, t) {
    n = split(list, v, " ")
    for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
  }
  /^BenchmarkRedis\// {
    name = $1; sub(/-[0-9]+$/, "", name)
    if (!(name in seen)) { seen[name] = 1; order[++rows] = name }
    for (i = 3; i < NF; i += 2) val[name, $(i + 1)] = val[name, $(i + 1)] " " $i
  }
  END {
    print "| algorithm | traffic | mode | checks/s | p50 µs | p99 µs | allowed % |"
    print "|---|---|---|---:|---:|---:|---:|"
    for (r = 1; r <= rows; r++) {
      split(order[r], part, "/"); n = order[r]
      printf "| %s | %s | %s | %.0f | %.1f | %.1f | %.1f |\n", part[2], part[3], part[4],
        median(val[n, "checks/s"]), median(val[n, "p50-µs"]), median(val[n, "p99-µs"]), median(val[n, "allowed-%"])
    }
  }' "$out"
echo "uptime after go test -bench: $(uptime)"
echo

echo "## redis-benchmark comparison"
RATELAB_BENCH_COMPARE=1 timeout 15m go test ./algorithms -run '^TestRedisBenchmarkComparison$' \
  -count 1 -v -benchtime "$benchtime" -timeout 14m | grep -v -e '^=== RUN' -e '^PASS' -e '^ok'
echo "uptime at end: $(uptime)"
echo

echo "## batching: 1, 16, 64, 256 callers, batched and unbatched (benchtime $benchtime, count $count)"
timeout 20m go test ./algorithms -run '^$' -bench '^BenchmarkBatching$' -benchtime "$benchtime" \
  -count "$count" -timeout 19m | grep '^BenchmarkBatching/'
echo "uptime after the batching step: $(uptime)"
echo

echo "## serial check against a bare EVALSHA, interleaved on one connection (count $count)"
timeout 10m go test ./algorithms -run '^$' -bench '^BenchmarkSerialAgainstBare$' -benchtime 20000x \
  -count "$count" -timeout 9m | grep '^BenchmarkSerialAgainstBare/'
echo "uptime at end of the batching steps: $(uptime)"
