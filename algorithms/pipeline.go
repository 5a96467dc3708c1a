package algorithms

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// LoadScript loads the limiter's script into Redis, so that checks queued on a
// pipeline (QueueAllowAt) find it: a pipeline cannot fall back from EVALSHA to EVAL.
func (l *Redis) LoadScript(ctx context.Context) error {
	if err := l.spec.script.Load(ctx, l.rdb).Err(); err != nil {
		return fmt.Errorf("%s: loading the script: %w", l.spec.name, err)
	}
	return nil
}

// QueueAllowAt queues a check of identity as if the server's clock read now (as
// AllowAt) on pipe, and returns what reads its Decision once pipe has run: a virtual
// clock drives many checks in one round trip. Checks of one identity must be queued
// in time order; LoadScript must have run first.
func (l *Redis) QueueAllowAt(ctx context.Context, pipe redis.Pipeliner, identity string, now time.Time) (func() (Decision, error), error) {
	key, err := l.Key(identity)
	if err != nil {
		return nil, err
	}
	args := append([]any(nil), l.args...)
	args[3] = strconv.FormatInt(now.UnixMicro(), 10)
	cmd := l.spec.script.EvalSha(ctx, pipe, []string{key}, args...)
	return func() (Decision, error) {
		res, err := cmd.Int64Slice()
		if err != nil {
			return Decision{}, fmt.Errorf("%s check: %w", l.spec.name, err)
		}
		return l.decode(res)
	}, nil
}
