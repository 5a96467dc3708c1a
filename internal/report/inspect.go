package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ratelab/ratelab/algorithms"
)

// InspectSchemaVersion is the version of the JSON that `ratelab inspect --output json`
// writes (documented in the README). Fields are only ever added.
const InspectSchemaVersion = 1

// InspectKey is one key as `ratelab inspect KEY` shows it. Its JSON field names are
// stable; durations inside State are whole microseconds in *_us fields, as in a
// Decision (algorithms/json.go), never Go's nanosecond Durations.
type InspectKey struct {
	SchemaVersion int    `json:"schema_version,omitempty"`
	Key           string `json:"key"`
	// Kind is rl, product or lock.
	Kind algorithms.Kind `json:"kind"`
	// Type is the Redis type of the key: hash, zset, string, …
	Type string `json:"type"`
	// TTLMillis is the key's time to live in milliseconds; -1 when it has none.
	TTLMillis int64 `json:"ttl_ms"`
	// TimeMicros is the Redis server's TIME when the key was read, the "now" of State.
	TimeMicros int64 `json:"time_us"`

	// Algorithm, Policy (as in the key name, e.g. 10r1s-b20) and Identity are set for limiter keys.
	Algorithm string `json:"algorithm,omitempty"`
	Policy    string `json:"policy,omitempty"`
	Identity  string `json:"identity,omitempty"`
	// Rule and Limit name the policy file's rule and limit of a limiter key that a
	// combined check wrote (serve --limits); empty otherwise.
	Rule  string `json:"rule,omitempty"`
	Limit string `json:"limit,omitempty"`
	// Hash and ZSet are the raw content of a limiter key.
	Hash map[string]string    `json:"hash,omitempty"`
	ZSet []algorithms.ZMember `json:"zset,omitempty"`
	// State is the limiter's state at TimeMicros, decoded from the content.
	State *algorithms.State `json:"state,omitempty"`

	// ProductID is set for product and lock keys.
	ProductID string `json:"product_id,omitempty"`
	// Value is a fill lock's value: the token of the process that holds it.
	Value *string `json:"value,omitempty"`
	// Product is a cached product's entry, decoded from Hash.
	Product *InspectProduct `json:"product,omitempty"`
	// Lock is the fill lock of a cached product.
	Lock *InspectLock `json:"lock,omitempty"`

	// Error says why the key could not be decoded, when it could not (--ip listings only;
	// inspect KEY exits with status 6 instead).
	Error string `json:"error,omitempty"`
	// Summary is the key in words, as the table output shows it.
	Summary string `json:"summary"`
}

// InspectProduct is a cached product's entry.
type InspectProduct struct {
	// Value is the cached JSON; nil for a cached "not found" or an invalidation marker.
	Value *string `json:"value,omitempty"`
	// NotFound reports a cached "not found" (the backend does not know the id).
	NotFound bool `json:"not_found"`
	// ExpiresInMillis is how long the entry is still served (negative: stale); nil
	// when the key holds only the generation, as after an invalidation.
	ExpiresInMillis *int64 `json:"expires_in_ms,omitempty"`
	// Generation is bumped by every invalidation; a fill that read an older one cannot write back.
	Generation string `json:"generation"`
}

// InspectLock is whether a cached product's fill lock is held.
type InspectLock struct {
	Key  string `json:"key"`
	Held bool   `json:"held"`
	// TTLMillis is the lock's time to live in milliseconds (-1: none), when held.
	TTLMillis int64 `json:"ttl_ms,omitempty"`
	// Owner is the lock's value, the token of the process that holds it.
	Owner string `json:"owner,omitempty"`
}

// InspectIdentity is every limiter key of one identity (`ratelab inspect --ip`).
type InspectIdentity struct {
	SchemaVersion int          `json:"schema_version"`
	Backend       string       `json:"backend"`
	Prefix        string       `json:"prefix"`
	Identity      string       `json:"identity"`
	Keys          []InspectKey `json:"keys"`
}

// InspectSummary is what ratelab holds under a prefix (`ratelab inspect` without a key).
type InspectSummary struct {
	SchemaVersion int    `json:"schema_version"`
	Backend       string `json:"backend"`
	Prefix        string `json:"prefix"`
	// Keys is how many keys are under the prefix.
	Keys int64 `json:"keys"`
	// ByKind counts keys per kind: rl, product, lock, and undecodable for keys under
	// the prefix that are not of a form ratelab writes.
	ByKind map[string]int64 `json:"by_kind"`
	// ByAlgorithm counts limiter keys per algorithm.
	ByAlgorithm map[string]int64 `json:"by_algorithm"`
	// MemoryBytes is the total MEMORY USAGE of the keys; an estimate from
	// MemorySampled keys when MemoryEstimated; -1 when the server cannot tell.
	MemoryBytes     int64 `json:"memory_bytes"`
	MemorySampled   int64 `json:"memory_sampled"`
	MemoryEstimated bool  `json:"memory_estimated"`
	// WithoutTTL counts the keys with no TTL; it must be 0. WithoutTTLKeys lists up
	// to 100 of them.
	WithoutTTL     int64    `json:"without_ttl"`
	WithoutTTLKeys []string `json:"without_ttl_keys"`
	// WithoutTTLUndecodable counts the keys without a TTL that are not of a form
	// ratelab writes: flush leaves those alone.
	WithoutTTLUndecodable int64 `json:"without_ttl_undecodable"`
	// UndecodableKeys lists up to 100 of the keys counted as undecodable.
	UndecodableKeys []string `json:"undecodable_keys"`
}

// InspectListLimit bounds the keys an InspectSummary lists by name.
const InspectListLimit = 100

// WriteInspectKey writes one key in format (table or json).
func WriteInspectKey(w io.Writer, format string, k InspectKey) error {
	switch format {
	case FormatJSON:
		return InspectKeyJSON(w, k)
	case FormatTable, "":
		return InspectKeyTable(w, k)
	}
	return inspectFormatError(format)
}

// WriteInspectIdentity writes every limiter key of one identity in format (table or json).
func WriteInspectIdentity(w io.Writer, format string, r InspectIdentity) error {
	switch format {
	case FormatJSON:
		return InspectIdentityJSON(w, r)
	case FormatTable, "":
		return InspectIdentityTable(w, r)
	}
	return inspectFormatError(format)
}

// WriteInspectSummary writes a summary of the keys under a prefix in format (table or json).
func WriteInspectSummary(w io.Writer, format string, s InspectSummary) error {
	switch format {
	case FormatJSON:
		return InspectSummaryJSON(w, s)
	case FormatTable, "":
		return InspectSummaryTable(w, s)
	}
	return inspectFormatError(format)
}

// inspectFormatError refuses a format inspect and flush do not write.
func inspectFormatError(format string) error {
	return fmt.Errorf("output format %q: choose one of %s", format, strings.Join(InspectFormats(), ", "))
}

// DescribeKey is a key's state in words, e.g.
// "fixed-window 10/1s for 10.0.0.7: 7 used, 3 left, window resets in 412 ms".
func DescribeKey(k InspectKey) string {
	switch {
	case k.Error != "":
		return "cannot decode: " + k.Error
	case k.Kind == algorithms.KindProduct && k.Product != nil:
		p := k.Product
		var s string
		switch {
		case p.ExpiresInMillis == nil:
			s = "product " + k.ProductID + ": no entry, only the generation " + p.Generation + " (invalidated)"
		case *p.ExpiresInMillis <= 0:
			s = "product " + k.ProductID + ": stale entry, expired " + inspectTTL(-*p.ExpiresInMillis) + " ago"
		case p.NotFound:
			s = "product " + k.ProductID + ": cached \"not found\", served for " + inspectTTL(*p.ExpiresInMillis) + " more"
		default:
			s = "product " + k.ProductID + ": cached, served for " + inspectTTL(*p.ExpiresInMillis) + " more"
		}
		if p.ExpiresInMillis != nil {
			s += ", generation " + p.Generation
		}
		if k.Lock != nil {
			s += "; fill lock " + inspectLockWords(*k.Lock)
		}
		return s
	case k.Kind == algorithms.KindLock:
		return "fill lock of product " + k.ProductID + ", held for " + inspectTTL(k.TTLMillis) + " more"
	case k.Kind == algorithms.KindHealth:
		return "a serve node's health probe, gone in " + inspectTTL(k.TTLMillis)
	case k.State == nil:
		return "no state"
	}
	if k.Rule != "" {
		return "limit " + k.Limit + " of rule " + k.Rule + ": " + DescribeState(*k.State, k.Identity)
	}
	return DescribeState(*k.State, k.Identity)
}

// DescribeState is a limiter's state in words, for identity.
func DescribeState(s algorithms.State, identity string) string {
	head := s.Algorithm + " " + s.Policy.Describe()
	if identity != "" {
		head += " for " + identity
	}
	left := fmt.Sprintf("%d left", s.Remaining)
	if s.Remaining == 0 {
		left = "none left, next admitted in " + inspectDuration(s.RetryAfter)
	}
	var parts []string
	switch s.Algorithm {
	case algorithms.FixedWindow:
		parts = append(parts, fmt.Sprintf("%s used", inspectNumber(s.Used)), left)
		if !s.Fresh() {
			parts = append(parts, "window resets in "+inspectDuration(s.ResetAfter))
		}
	case algorithms.SlidingLog:
		parts = append(parts, fmt.Sprintf("%s admitted in the last %s", inspectNumber(s.Used), algorithms.FormatWindow(s.Policy.Window)))
		if s.Remaining > 0 {
			parts = append(parts, left)
			if s.NextFree > 0 {
				parts = append(parts, "next slot frees in "+inspectDuration(s.NextFree))
			}
		} else {
			parts = append(parts, "none left, next slot frees in "+inspectDuration(s.NextFree))
		}
	case algorithms.SlidingCounter:
		parts = append(parts, fmt.Sprintf("about %s in the last %s (%d in this window, %d in the one before)",
			inspectNumber(s.Used), algorithms.FormatWindow(s.Policy.Window), s.Current, s.Previous), left)
		if !s.Fresh() {
			parts = append(parts, "clear in "+inspectDuration(s.ResetAfter))
		}
	case algorithms.TokenBucket:
		parts = append(parts, fmt.Sprintf("%s tokens", inspectNumber(float64(s.Capacity)-s.Used)))
		if s.Remaining == 0 {
			parts = append(parts, "next token in "+inspectDuration(s.RetryAfter))
		}
		if s.Fresh() {
			parts = append(parts, "full")
		} else {
			parts = append(parts, "full in "+inspectDuration(s.ResetAfter))
		}
	case algorithms.LeakyBucket:
		parts = append(parts, fmt.Sprintf("%s queued", inspectNumber(s.Used)), left)
		if s.Remaining > 0 && s.Delay > 0 {
			parts = append(parts, "a request now waits "+inspectDuration(s.Delay))
		}
		if !s.Fresh() {
			parts = append(parts, "empty in "+inspectDuration(s.ResetAfter))
		}
	case algorithms.GCRA:
		if s.Fresh() {
			parts = append(parts, "TAT passed", left)
		} else {
			parts = append(parts, fmt.Sprintf("TAT %s ahead (%s intervals)", inspectDuration(s.ResetAfter), inspectNumber(s.Used)), left)
		}
	default:
		parts = append(parts, fmt.Sprintf("%s of %d used", inspectNumber(s.Used), s.Capacity), left)
	}
	return head + ": " + strings.Join(parts, ", ")
}

// inspectNumber writes a count with one decimal when it has a fraction: 7, 13.4.
func inspectNumber(f float64) string {
	if f == math.Trunc(f) {
		return strconv.FormatFloat(f, 'f', 0, 64)
	}
	return strconv.FormatFloat(f, 'f', 1, 64)
}

// inspectDuration writes a duration for people: 120 µs, 412 ms, 1.96 s, 2m30s.
func inspectDuration(d time.Duration) string {
	switch {
	case d > 0 && d < time.Millisecond:
		return fmt.Sprintf("%d µs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%d ms", (d+time.Millisecond/2)/time.Millisecond)
	case d < time.Minute:
		return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", d.Seconds()), "0"), ".") + " s"
	}
	return d.Round(time.Second).String()
}

func inspectTTL(ms int64) string {
	if ms < 0 {
		return "none (!)"
	}
	return inspectDuration(time.Duration(ms) * time.Millisecond)
}

func inspectLockWords(l InspectLock) string {
	if !l.Held {
		return "not held"
	}
	s := "held for " + inspectTTL(l.TTLMillis) + " more"
	if l.Owner != "" {
		s += " by " + Shown(l.Owner)
	}
	return s
}

func inspectHash(h map[string]string) string {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, k := range names {
		// Raw content is shown as stored; a value with line breaks or other control
		// characters is quoted, so that it cannot break the layout or the terminal.
		parts[i] = Shown(k) + "=" + Shown(h[k])
	}
	return strings.Join(parts, " ")
}

// inspectZSetShown bounds the members of a sorted set the table output lists.
const inspectZSetShown = 10

func inspectZSet(z []algorithms.ZMember, now int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d members (member, score: admitted at, µs)\n", len(z))
	for i, m := range z {
		if i == inspectZSetShown {
			fmt.Fprintf(&b, "         … and %d more\n", len(z)-i)
			break
		}
		ago := now - int64(m.Score)
		when := inspectDuration(time.Duration(ago)*time.Microsecond) + " ago"
		if ago < 0 {
			when = "in " + inspectDuration(time.Duration(-ago)*time.Microsecond)
		}
		fmt.Fprintf(&b, "         %s  %.0f  %s\n", Shown(m.Member), m.Score, when)
	}
	return b.String()
}

func inspectValue(v string) string {
	var b bytes.Buffer
	if json.Indent(&b, []byte(v), "         ", "  ") == nil {
		return b.String()
	}
	return strconv.Quote(v)
}

func inspectBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
