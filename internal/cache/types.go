package cache

import (
	"context"
	"errors"
	"fmt"

	"github.com/ratelab/ratelab/algorithms"
)

// MaxIDLen bounds an id. Ids become part of key names, so they are short and plain.
const MaxIDLen = algorithms.MaxProductIDLen

// Errors from the cache.
var (
	// ErrNotFound is what a Loader returns for an id the backend does not know; Get
	// returns it too, also when the answer comes from the negative cache.
	ErrNotFound = errors.New("not found")
	// ErrInvalidID is wrapped by the error for an id ValidateID refuses.
	ErrInvalidID = errors.New("invalid id")
	// ErrUnconfirmed is wrapped by Invalidate's error when the Redis tier was
	// invalidated but some subscribed node did not confirm dropping its local copy in time.
	ErrUnconfirmed = errors.New("invalidation not confirmed by every node")
	// ErrClosed is returned by a cache after Close.
	ErrClosed = errors.New("cache closed")
)

// ValidateID checks that id can be a product id: 1 to MaxIDLen characters of
// [A-Za-z0-9_-]. Nothing else ever becomes part of a key name.
func ValidateID(id string) error {
	if problem := algorithms.ProductIDProblem(id); problem != "" {
		return fmt.Errorf("%w: %s", ErrInvalidID, problem)
	}
	return nil
}

// Loader fetches one value from the slow source behind the cache. It returns
// ErrNotFound (possibly wrapped) for an id the source does not know.
type Loader func(ctx context.Context, id string) ([]byte, error)

// Source says where Get found its value.
type Source string

// The sources of a value.
const (
	// FromLocal: this process's local tier.
	FromLocal Source = "local"
	// FromRedis: the Redis tier, already filled.
	FromRedis Source = "redis"
	// FromLoad: this request called the Loader and filled the cache.
	FromLoad Source = "miss"
	// FromWait: another process (or node) held the fill lock; this request waited
	// for its fill and read the value from Redis.
	FromWait Source = "wait"
	// FromShared: another request in this process was already reading or filling
	// the same id; this one shared its result.
	FromShared Source = "shared"
	// FromBypass: Redis could not be used; the Loader was called and nothing was cached.
	FromBypass Source = "bypass"
)

// Result is a value and where it came from.
type Result struct {
	Value  []byte `json:"-"`
	Source Source `json:"source"`
}

// Stats counts what a cache did since it was made.
type Stats struct {
	// LocalHits and RedisHits are reads answered by a tier without a load.
	LocalHits int64 `json:"local_hits"`
	RedisHits int64 `json:"redis_hits"`
	// NegativeHits are reads answered "not found" from the Redis tier.
	NegativeHits int64 `json:"negative_hits"`
	// Misses are reads that took the fill lock and loaded the value.
	Misses int64 `json:"misses"`
	// Loads are calls of the Loader: fills, and reads while Redis was unusable.
	Loads int64 `json:"loads"`
	// LockWaits are reads that waited for another node's fill instead of loading.
	LockWaits int64 `json:"lock_waits"`
	// RejectedFills are fills not written because the id was invalidated meanwhile.
	RejectedFills int64 `json:"rejected_fills"`
	// Invalidations are calls of Invalidate on this cache.
	Invalidations int64 `json:"invalidations"`
	// LocalDrops are times the whole local tier was dropped on losing the subscription.
	LocalDrops int64 `json:"local_drops"`
	// RedisErrors are Redis calls that failed or timed out.
	RedisErrors int64 `json:"redis_errors"`
}
