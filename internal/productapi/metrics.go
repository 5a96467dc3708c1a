package productapi

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratelab/ratelab/algorithms"
)

// metrics are one API's collectors, registered on Config.Registerer and
// unregistered by Close.
type metrics struct {
	requests     *prometheus.CounterVec
	checkSeconds *prometheus.HistogramVec
	limiterErrs  *prometheus.CounterVec
	failModes    *prometheus.CounterVec
	outage       prometheus.Gauge
	outages      prometheus.Counter
	giveBacks    *prometheus.CounterVec
	all          []prometheus.Collector
}

func newMetrics(backend *Backend, stats func() (local, redis, misses, waits int64), inFlight func() float64, evictions func() int64) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ratelab_http_requests_total",
			Help: "Requests to the Product API by route, rate-limit decision (allowed, denied, fail-open, fail-closed, " +
				"local-allowed, local-denied: the check failed and the node's in-memory limiter decided; " +
				"overloaded: 503, no check slot or pool connection in time; timeout: 503, Redis slow but no outage declared; " +
				"unlimited, rejected) and algorithm.",
		}, []string{"route", "decision", "algorithm"}),
		checkSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ratelab_limiter_check_seconds",
			Help:    "Time of one rate-limiter check, errors and timeouts included.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"algorithm"}),
		limiterErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ratelab_limiter_errors_total",
			Help: "Rate-limiter checks that Redis failed or did not answer within their time budget (not those refused for overload).",
		}, []string{"algorithm"}),
		failModes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ratelab_limiter_fail_total",
			Help: "Requests decided by --on-redis-error after a failed check: mode open (served), closed (503) or local (the node's in-memory limiter decided).",
		}, []string{"mode"}),
	}
	m.outage = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ratelab_limiter_outage",
		Help: "1 while a Redis outage is declared (a failed probe, or failing checks with no success between), else 0.",
	})
	m.outages = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ratelab_limiter_outages_total",
		Help: "Redis outages declared since the start.",
	})
	checks := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ratelab_limiter_checks_in_flight",
		Help: "Rate-limiter checks running now; at most the node's bound (its Redis pool size).",
	}, inFlight)
	m.giveBacks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ratelab_limiter_give_backs_total",
		Help: "Leaky-bucket requests whose client left while they waited: returned (the slot given back) true or false (it had already left the queue, or could not be reached).",
	}, []string{"algorithm", "returned"})
	m.all = []prometheus.Collector{m.requests, m.checkSeconds, m.limiterErrs, m.failModes, m.outage, m.outages, checks, m.giveBacks}
	if evictions != nil {
		m.all = append(m.all, prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "ratelab_local_limiter_evictions_total",
			Help: "Identities whose in-memory limiter state was forgotten, least recently used first, to stay within --local-max-identities.",
		}, func() float64 { return float64(evictions()) }))
	}
	if backend != nil {
		m.all = append(m.all, prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "ratelab_backend_calls_total",
			Help: "Reads from the slow product backend (shared by every node of one process).",
		}, func() float64 { return float64(backend.Calls()) }))
	}
	if stats != nil {
		hits := prometheus.NewDesc("ratelab_cache_hits_total", "Product reads answered by a cache tier (local or redis).", []string{"tier"}, nil)
		misses := prometheus.NewDesc("ratelab_cache_misses_total", "Product reads that found no cached value and filled the cache from the backend.", nil, nil)
		waits := prometheus.NewDesc("ratelab_cache_fill_lock_waits_total", "Product reads that waited for another node's fill instead of calling the backend.", nil, nil)
		m.all = append(m.all, collectorFunc{
			descs: []*prometheus.Desc{hits, misses, waits},
			collect: func(ch chan<- prometheus.Metric) {
				local, redis, miss, wait := stats()
				ch <- prometheus.MustNewConstMetric(hits, prometheus.CounterValue, float64(local), "local")
				ch <- prometheus.MustNewConstMetric(hits, prometheus.CounterValue, float64(redis), "redis")
				ch <- prometheus.MustNewConstMetric(misses, prometheus.CounterValue, float64(miss))
				ch <- prometheus.MustNewConstMetric(waits, prometheus.CounterValue, float64(wait))
			},
		})
	}
	return m
}

// collectorFunc turns a function into a prometheus.Collector of fixed descriptions.
type collectorFunc struct {
	descs   []*prometheus.Desc
	collect func(chan<- prometheus.Metric)
}

func (c collectorFunc) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c collectorFunc) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }

// limiterCollector exports what the Redis limiters did, per algorithm: checks the
// deny cache answered, script calls sent to Redis, and round trips of batched calls.
func limiterCollector(stats func() map[string]algorithms.Stats) prometheus.Collector {
	local := prometheus.NewDesc("ratelab_limiter_local_answers_total",
		"Rate-limiter checks answered by the node's deny cache, without a call to Redis (--deny-cache).", []string{"algorithm"}, nil)
	calls := prometheus.NewDesc("ratelab_limiter_redis_calls_total",
		"Rate-limiter script calls sent to Redis (checks and give-backs).", []string{"algorithm"}, nil)
	trips := prometheus.NewDesc("ratelab_limiter_round_trips_total",
		"Round trips of batched rate-limiter calls (--batch): one per pipeline, however many checks it carries.", []string{"algorithm"}, nil)
	return collectorFunc{
		descs: []*prometheus.Desc{local, calls, trips},
		collect: func(ch chan<- prometheus.Metric) {
			for name, s := range stats() {
				ch <- prometheus.MustNewConstMetric(local, prometheus.CounterValue, float64(s.Local), name)
				ch <- prometheus.MustNewConstMetric(calls, prometheus.CounterValue, float64(s.RedisCalls), name)
				ch <- prometheus.MustNewConstMetric(trips, prometheus.CounterValue, float64(s.RoundTrips), name)
			}
		},
	}
}
