package cache

import (
	"fmt"
	"strconv"

	"github.com/ratelab/ratelab/algorithms"
)

// Entry is a cached product as the cache's scripts leave its hash: lua/write.lua
// writes v (or nf) with x and g, lua/invalidate.lua drops them and bumps g, leaving an
// invalidation marker.
type Entry struct {
	// Value is the cached value (field v); nil for a cached "not found" or a marker.
	Value []byte
	// NotFound reports a cached "not found" (field nf): the loader did not know the id.
	NotFound bool
	// ExpiresAtMillis is when the entry stops being served (field x), in milliseconds
	// of the Redis server's clock; 0 when the key holds only the generation, as after
	// an invalidation.
	ExpiresAtMillis int64
	// Generation is bumped by every invalidation (field g, 0 when absent); a fill that
	// read an older one cannot write its value back.
	Generation int64
}

// DecodeEntry reads a product key's hash fields (HGETALL) as the cache writes them.
// The error, wrapping algorithms.ErrBadState, says which field is not what the cache
// writes; it lives beside the scripts that write the fields so the two change together.
func DecodeEntry(fields map[string]string) (Entry, error) {
	var e Entry
	for f, v := range fields {
		switch f {
		case "v":
			e.Value = []byte(v)
		case "nf":
			e.NotFound = true
		case "g":
			g, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return Entry{}, fmt.Errorf("%w: the generation g=%q is not an integer", algorithms.ErrBadState, v)
			}
			e.Generation = g
		case "x":
			x, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return Entry{}, fmt.Errorf("%w: the expiry x=%q is not an integer", algorithms.ErrBadState, v)
			}
			e.ExpiresAtMillis = x
		default:
			return Entry{}, fmt.Errorf("%w: a cached product has the fields v, nf, x and g, not %q", algorithms.ErrBadState, f)
		}
	}
	return e, nil
}
