// Package algorithms is ratelab's rate-limiting library: six algorithms, each as one
// atomic Lua script for Redis, as a pure Go model of the same decisions, and as an
// in-memory limiter built on the model. ratelab's own commands use it; so can any Go
// service:
//
//	go get github.com/ratelab/ratelab
//
//	keys := algorithms.MustKeyspace("myapp")
//	lim, err := algorithms.NewRedis(rdb, keys, algorithms.GCRA, algorithms.Policy{Limit: 10, Window: time.Second})
//	...
//	d, err := lim.Allow(ctx, clientIP)
//	if err == nil && !d.Allowed {
//		// answer 429 with Retry-After: d.RetryAfter
//	}
//
// # Policies and decisions
//
// A Policy is a limit L requests per window W, and a burst B (default L) for the
// algorithms that have one. ParsePolicy and Policy.String read and write the short
// form used in key names ("10r1s", "10r1s-b20"). Every check answers a Decision:
// allowed or not, the limit, how many requests remain, how long a denied request
// should wait (RetryAfter, rounded up, never 0 when denied), how long until the
// identity's state is fresh again (ResetAfter), how long an admitted request must wait
// before it is served (Delay, leaky bucket only), and the time of the decision in
// microseconds. A denied request consumes nothing.
//
// # The six algorithms
//
// Names lists them in this order; ExpectedMaxInWindow gives each one's worst case.
//
//   - FixedWindow: a counter per epoch-aligned window of W; admits while the count
//     is below L. Up to 2L in one W across a window boundary.
//   - SlidingLog: the times of the admitted requests of the last W; admits while
//     fewer than L are in (now−W, now]. Exactly L in any W, at the cost of memory in L.
//   - SlidingCounter: the current and the previous window's counts, the previous one
//     weighted by how much of it still overlaps the last W. About L for most traffic,
//     2L−1 at worst.
//   - TokenBucket: up to B tokens refilled at L per W; a request takes one. A burst of
//     B, then L per W: B+L in one W at worst.
//   - LeakyBucket: a queue of at most B requests draining at L per W. It admits what
//     the token bucket admits but shapes: an admitted request is told to wait (Delay)
//     until those queued ahead of it have left, so the output is smooth at L/W. A
//     request that would wait longer than the max delay (WithMaxDelay; by default
//     B·W/L, at most MaxDelayCap) is denied, and one whose client gives up while it
//     waits gives its slot back (Limiter.GiveBack).
//   - GCRA: the generic cell rate algorithm, one theoretical arrival time per
//     identity; the token bucket's decisions in less state.
//
// All arithmetic is on integer microseconds. Fractions of a token or of an emission
// interval are kept exact by counting in small units (1/W of a token, 1/L of a
// microsecond), and Policy.Validate keeps every product below 2^53, where Lua's
// doubles stop being exact; so a script and its model agree on every decision, to the
// microsecond.
//
// # Redis, Local and the models
//
// Redis (NewRedis) keeps state in Redis: one script call per check, one round trip,
// atomic, so any number of nodes sharing one Redis enforce one limit per identity. It
// takes the narrowest go-redis interface it needs, redis.Scripter, so a *redis.Client,
// a *redis.ClusterClient or a redis.UniversalClient will do. Scripts run with EVALSHA
// and fall back to EVAL, so a Redis restart or SCRIPT FLUSH costs one round trip,
// never an error.
//
// Local (NewLocal) keeps state in this process only. Behind a load balancer over N
// nodes, each node's Local lets a client through up to N times the limit; it is the
// limiter to fall back on when Redis is down, and the one to compare with. It holds
// at most WithMaxIdentities identities (DefaultMaxIdentities by default) and forgets
// the one used least recently to make room; a forgotten identity starts fresh, and
// Local.Evictions counts them.
//
// The models (NewModel) are the algorithms as plain Go values with an explicit time:
// Model.Allow(now) decides a request at now (microseconds since the epoch). They are
// the oracle the scripts are tested against, the engine of Local, and the way to test
// code of your own against a limiter without Redis and without a clock.
//
// # Keys
//
// A Keyspace names every key under one prefix. Limiter state lives at
//
//	<prefix>:rl:<algorithm>:<policy>:{<identity>}     e.g. ratelab:rl:token-bucket:10r1s-b20:{10.0.0.7}
//
// so two policies never share state, and Keyspace.Parse and DecodeState can tell what
// a key holds from its name and content alone. Identities are normalised first
// (NormalizeIdentity: canonical IP text, an IPv6 network as CIDR text, or at most
// MaxIdentityLen characters of a safe alphabet); IPIdentity groups an IPv6 client by
// its network, and an APIKeyHasher turns API keys into identities that never show the
// key. Every key the scripts write has a TTL: the time until its state is fresh again
// plus a grace second.
//
// # Redis Cluster
//
// The braces around the identity are a Redis Cluster hash tag: every key one check
// touches hashes to the identity's slot, so a script never spans slots and the
// limiters work unchanged on a cluster, scaling with its number of masters.
//
// # Time
//
// Without an explicit time, every script reads the Redis server's TIME, so nodes with
// skewed clocks still agree on one clock. Redis.AllowAt passes a time instead, for
// tests and virtual clocks; Local reads the clock it is given (time.Now by default).
package algorithms
