package algorithms

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Limiter decides whether one identity may make one more request. Identities are
// normalised by the limiter (see NormalizeIdentity); a denied request consumes nothing.
type Limiter interface {
	// Allow decides one request of identity.
	Allow(ctx context.Context, identity string) (Decision, error)
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
type Redis struct {
	spec   *spec
	policy Policy
	rdb    redis.Scripter
	args   []any // limit, window µs, burst: the fixed ARGV of every call
	// keyHead is every key of this limiter up to the identity, built once: the check
	// is the hot path, and the policy's text does not change.
	keyHead string
}

// NewRedis returns a Redis limiter for the named algorithm and policy, keyed under keys.
func NewRedis(rdb redis.Scripter, keys Keyspace, algorithm string, p Policy) (*Redis, error) {
	s, err := lookup(algorithm, p)
	if err != nil {
		return nil, err
	}
	if keys.prefix == "" {
		return nil, fmt.Errorf("%w: the keyspace has no prefix", ErrInvalidPrefix)
	}
	head := keys.Limiter(algorithm, p, "")
	return &Redis{
		spec: s, policy: p, rdb: rdb,
		args:    []any{p.Limit, p.WindowMicros(), p.EffectiveBurst()},
		keyHead: head[:len(head)-1], // without the closing brace
	}, nil
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
	return l.run(ctx, identity, "")
}

// AllowAt decides one request of identity as if the server's clock read now. It is
// for tests and virtual clocks: state written at one time and read at an earlier one
// is not meaningful.
func (l *Redis) AllowAt(ctx context.Context, identity string, now time.Time) (Decision, error) {
	return l.run(ctx, identity, strconv.FormatInt(now.UnixMicro(), 10))
}

func (l *Redis) run(ctx context.Context, identity, now string) (Decision, error) {
	key, err := l.Key(identity)
	if err != nil {
		return Decision{}, err
	}
	args := [4]any{l.args[0], l.args[1], l.args[2], now}
	res, err := l.spec.script.Run(ctx, l.rdb, []string{key}, args[:]...).Int64Slice()
	if err != nil {
		return Decision{}, fmt.Errorf("%s check: %w", l.spec.name, err)
	}
	if len(res) != 6 {
		return Decision{}, fmt.Errorf("%s check: %w: %d values", l.spec.name, ErrBadReply, len(res))
	}
	return decision(res[0] == 1, l.policy.Limit, res[1], res[2], res[3], res[4], res[5]), nil
}
