package cache_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/cache"
	"github.com/ratelab/ratelab/internal/redistest"
)

// TestDecodeEntryReadsWhatTheCacheWrites: a filled value, a cached "not found" and
// an invalidation marker, each written by the cache's own scripts, decode to what
// they mean.
func TestDecodeEntryReadsWhatTheCacheWrites(t *testing.T) {
	for _, b := range redistest.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			keys := algorithms.MustKeyspace("entry")
			src := newSource(0)
			src.set("7", `{"id":"7"}`)
			ttl, negTTL := time.Minute, 30*time.Second
			c := nodes(t, b.Client, "entry", 1, cache.Options{TTL: ttl, Jitter: 0.0001, NegativeTTL: negTTL})[0]
			decode := func(id string) (cache.Entry, int64) {
				t.Helper()
				h, err := b.Client.HGetAll(ctx, keys.Product(id)).Result()
				if err != nil {
					t.Fatal(err)
				}
				now, err := b.Client.Time(ctx).Result()
				if err != nil {
					t.Fatal(err)
				}
				e, err := cache.DecodeEntry(h)
				if err != nil {
					t.Fatalf("DecodeEntry(%v): %v", h, err)
				}
				return e, now.UnixMilli()
			}
			// within reports that an expiry is about ttl after the server's now.
			within := func(e cache.Entry, now int64, ttl time.Duration) bool {
				left := time.Duration(e.ExpiresAtMillis-now) * time.Millisecond
				return left > ttl-5*time.Second && left <= ttl+ttl/1000+time.Second
			}

			mustGet(t, c, "7", src.load)
			e, now := decode("7")
			if string(e.Value) != `{"id":"7"}` || e.NotFound || e.Generation != 0 || !within(e, now, ttl) {
				t.Errorf("a filled value decodes to %+v (now %d); want the value, generation 0, expiring in about %s", e, now, ttl)
			}

			if _, err := c.Get(ctx, "404", src.load); !errors.Is(err, cache.ErrNotFound) {
				t.Fatalf("Get of an unknown id: %v", err)
			}
			e, now = decode("404")
			if e.Value != nil || !e.NotFound || e.Generation != 0 || !within(e, now, negTTL) {
				t.Errorf(`a cached "not found" decodes to %+v (now %d); want not found, expiring in about %s`, e, now, negTTL)
			}

			if err := c.Invalidate(ctx, "7"); err != nil {
				t.Fatal(err)
			}
			if e, _ = decode("7"); e.Value != nil || e.NotFound || e.ExpiresAtMillis != 0 || e.Generation != 1 {
				t.Errorf("an invalidation marker decodes to %+v; want only generation 1", e)
			}
		})
	}
}

func TestDecodeEntryRefusesWhatTheCacheDoesNotWrite(t *testing.T) {
	t.Parallel()
	for _, h := range []map[string]string{
		{"v": "{}", "x": "soon", "g": "0"},
		{"v": "{}", "x": "1", "g": "one"},
		{"v": "{}", "colour": "red"},
	} {
		if e, err := cache.DecodeEntry(h); !errors.Is(err, algorithms.ErrBadState) {
			t.Errorf("DecodeEntry(%v) = %+v, %v; want ErrBadState", h, e, err)
		}
	}
}
