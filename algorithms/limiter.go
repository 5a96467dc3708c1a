package algorithms

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Limiter decides whether one identity may make one more request. Identities are
// normalised by the limiter (see NormalizeIdentity); a denied request consumes nothing.
type Limiter interface {
	// Allow decides one request of identity.
	Allow(ctx context.Context, identity string) (Decision, error)
	// GiveBack returns the slot of a request of identity that Allow admitted with a
	// Delay and that will not be served after all (its client went away while it
	// waited), and reports whether a slot was returned. Only the leaky bucket gives
	// back; see Redis.GiveBack.
	GiveBack(ctx context.Context, identity string, d Decision) (bool, error)
	// Algorithm is the algorithm's name.
	Algorithm() string
	// Policy is the policy the limiter enforces.
	Policy() Policy
}

// ErrBadReply means Redis answered a script with something it could not have
// returned: another program's script under the same SHA, or a proxy in the way.
var ErrBadReply = errors.New("unexpected reply from the limiter script")

// Redis is a Limiter whose state lives in Redis: one script call, one round trip,
// atomic, timed by the server's TIME. Any number of nodes sharing the Redis enforce
// one limit per identity.
//
// With WithBatching, concurrent checks share round trips (see batch.go). With
// WithDenyCache, a check of an identity that Redis denied with "retry after R" less
// than R ago is denied without a round trip. That is exact, no decision changes:
// an identity's state only improves with time, and other nodes can only consume, so
// Redis would deny it too; R counts from before the check was sent, so the local
// window never outlasts the server's. Two things do improve state early: a leaky
// bucket's give-back (this limiter's own give-backs drop the identity from the
// cache; another node's cannot, so with give-backs from several nodes the cache is
// conservative, denying for at most R what Redis might admit) and keys deleted
// behind the limiter's back (flush, a Redis restart without persistence).
type Redis struct {
	spec   *spec
	policy Policy
	rdb    redis.Scripter
	// args is the fixed ARGV of every call: limit, window µs, burst, and for the leaky
	// bucket its max delay µs after the slot of the time.
	args []any
	// keyHead is every key of this limiter up to the identity, built once: the check
	// is the hot path, and the policy's text does not change.
	keyHead string
	// batch, when set, shares round trips between concurrent checks (WithBatching).
	batch *batcher
	// deny, when set, answers checks of a denied identity locally (WithDenyCache).
	deny *denyCache[Decision]
	// local counts checks the deny cache answered; calls counts script calls sent.
	local, calls atomic.Int64
}

// NewRedis returns a Redis limiter for the named algorithm and policy, keyed under
// keys and tuned by opts (WithMaxDelay for the leaky bucket).
func NewRedis(rdb redis.Scripter, keys Keyspace, algorithm string, p Policy, opts ...Option) (*Redis, error) {
	s, err := lookup(algorithm, p)
	if err != nil {
		return nil, err
	}
	o, err := applyOptions(opts)
	if err != nil {
		return nil, err
	}
	if keys.prefix == "" {
		return nil, fmt.Errorf("%w: the keyspace has no prefix", ErrInvalidPrefix)
	}
	head := keys.Limiter(algorithm, p, "")
	l := &Redis{
		spec: s, policy: p, rdb: rdb,
		args:    []any{p.Limit, p.WindowMicros(), p.EffectiveBurst(), ""},
		keyHead: head[:len(head)-1], // without the closing brace
	}
	if algorithm == LeakyBucket {
		l.args = append(l.args, o.leakyMaxDelay(p))
	}
	if o.batch {
		pl, ok := rdb.(pipeliner)
		if !ok {
			return nil, fmt.Errorf("%w: batching needs a client that pipelines (*redis.Client, *redis.ClusterClient); %T does not", ErrInvalidOption, rdb)
		}
		l.batch = &batcher{rdb: pl, script: s.script, maxInFlight: o.batchInFlight, maxSize: o.batchSize}
		if _, cluster := rdb.(*redis.ClusterClient); !cluster && !o.batchPipelined {
			l.batch.algorithm = s.name
		}
	}
	if o.denyCache > 0 {
		l.deny = newDenyCache[Decision](o.denyCache)
	}
	return l, nil
}

// Algorithm is the algorithm's name.
func (l *Redis) Algorithm() string { return l.spec.name }

// Policy is the policy the limiter enforces.
func (l *Redis) Policy() Policy { return l.policy }

// Key is the Redis key that holds identity's state.
func (l *Redis) Key(identity string) (string, error) {
	id, err := NormalizeIdentity(identity)
	if err != nil {
		return "", err
	}
	return l.keyHead + id + "}", nil
}

// Allow decides one request of identity at the Redis server's time.
func (l *Redis) Allow(ctx context.Context, identity string) (Decision, error) {
	return l.allow(ctx, identity, "", 0)
}

// AllowAt decides one request of identity as if the server's clock read now. It is
// for tests and virtual clocks: state written at one time and read at an earlier one
// is not meaningful.
func (l *Redis) AllowAt(ctx context.Context, identity string, now time.Time) (Decision, error) {
	return l.allow(ctx, identity, strconv.FormatInt(now.UnixMicro(), 10), now.UnixMicro())
}

// allow decides one request of identity at now ("" for the server's TIME; nowMicros
// is its value).
func (l *Redis) allow(ctx context.Context, identity, now string, nowMicros int64) (Decision, error) {
	id, err := NormalizeIdentity(identity)
	if err != nil {
		return Decision{}, err
	}
	virtual := now != ""
	if l.deny != nil {
		if !virtual {
			nowMicros = monoMicros()
		}
		if d, ok := l.deny.lookup(id, nowMicros, virtual); ok {
			l.local.Add(1)
			return d, nil
		}
	}
	res, err := l.run(ctx, l.keyHead+id+"}", now)
	if err != nil {
		return Decision{}, fmt.Errorf("%s check: %w", l.spec.name, err)
	}
	d, err := l.decode(res)
	if err == nil && l.deny != nil {
		l.deny.add(id, d, nowMicros, virtual)
	}
	return d, err
}

// decode reads the script's reply to a check.
func (l *Redis) decode(res []int64) (Decision, error) {
	want := 6
	if l.spec.name == LeakyBucket {
		want = 8
	}
	if len(res) != want {
		return Decision{}, fmt.Errorf("%s check: %w: %d values", l.spec.name, ErrBadReply, len(res))
	}
	d := decision(res[0] == 1, l.policy.Limit, res[1], res[2], res[3], res[4], res[5])
	if want == 8 {
		d.since, d.seq = res[6], res[7]
	}
	return d, nil
}

// run calls the script on key at now ("" for the server's TIME), with extra ARGV
// after the limiter's own.
func (l *Redis) run(ctx context.Context, key, now string, extra ...any) ([]int64, error) {
	args := make([]any, 0, len(l.args)+len(extra))
	args = append(append(args, l.args...), extra...)
	args[3] = now
	l.calls.Add(1)
	if l.batch != nil {
		return l.batch.run(ctx, []string{key}, args)
	}
	return l.spec.script.Run(ctx, l.rdb, []string{key}, args...).Int64Slice()
}

// Stats counts what a Redis limiter did since it was built.
type Stats struct {
	// Local counts the checks its deny cache answered without Redis.
	Local int64 `json:"local"`
	// RedisCalls counts the checks and give-backs it sent to Redis, each one run of
	// its algorithm's script, alone or in a batch (where one call of the batch script
	// runs several).
	RedisCalls int64 `json:"redis_calls"`
	// RoundTrips counts the round trips of its batched calls (a pipeline, or one call
	// of the batch script, is one);
	// 0 without batching, where each call is its own.
	RoundTrips int64 `json:"round_trips"`
}

// Stats counts the limiter's checks answered locally, its calls to Redis and, with
// batching, its round trips.
func (l *Redis) Stats() Stats {
	s := Stats{Local: l.local.Load(), RedisCalls: l.calls.Load()}
	if l.batch != nil {
		s.RoundTrips = l.batch.roundTrips.Load()
	}
	return s
}

// GiveBack returns the slot of d, a request of identity that this limiter admitted
// with a Delay, at the Redis server's time, and reports whether it did. Call it when
// the request will not be served after all: its client went away while it waited.
// It must be called at most once per Decision, and with the identity given to Allow.
//
// Only the leaky bucket gives back, and only the slot of a request that has not yet
// left the queue: before d's departure (its time plus Delay), and while the queue's
// level proves the request still waits. The level afterwards is exactly what it would
// be had the request never come; a give-back that cannot be proven so is refused and
// changes nothing, so giving back never mints capacity. It refuses a denied decision,
// one without Delay, and every decision of the other algorithms without a call to Redis.
func (l *Redis) GiveBack(ctx context.Context, identity string, d Decision) (bool, error) {
	return l.giveBack(ctx, identity, d, "")
}

// GiveBackAt is GiveBack as if the server's clock read now, for tests and virtual
// clocks, as AllowAt is.
func (l *Redis) GiveBackAt(ctx context.Context, identity string, d Decision, now time.Time) (bool, error) {
	return l.giveBack(ctx, identity, d, strconv.FormatInt(now.UnixMicro(), 10))
}

func (l *Redis) giveBack(ctx context.Context, identity string, d Decision, now string) (bool, error) {
	if l.spec.name != LeakyBucket || !d.Allowed || d.Delay <= 0 {
		return false, nil
	}
	key, err := l.Key(identity)
	if err != nil {
		return false, err
	}
	res, err := l.run(ctx, key, now, "give-back", d.TimeMicros, d.Delay.Microseconds(), d.since, d.seq)
	if err != nil {
		return false, fmt.Errorf("%s give-back: %w", l.spec.name, err)
	}
	if len(res) != 2 {
		return false, fmt.Errorf("%s give-back: %w: %d values", l.spec.name, ErrBadReply, len(res))
	}
	if res[0] == 1 && l.deny != nil {
		id, _ := NormalizeIdentity(identity) // Key normalised it above
		l.deny.forget(id)
	}
	return res[0] == 1, nil
}
