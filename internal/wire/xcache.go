package wire

import "github.com/ratelab/ratelab/internal/cache"

// FormatXCache returns the X-Cache value of an answer the cache gave from src: the
// source's name ("local", "redis", "miss", "wait", "shared", "bypass").
func FormatXCache(src cache.Source) string { return string(src) }

// ParseXCache reads an X-Cache value back into the cache's source; ok is false for a
// value a ratelab node does not send (another server's "HIT", say).
func ParseXCache(v string) (src cache.Source, ok bool) {
	switch s := cache.Source(v); s {
	case cache.FromLocal, cache.FromRedis, cache.FromLoad, cache.FromWait, cache.FromShared, cache.FromBypass:
		return s, true
	}
	return "", false
}
