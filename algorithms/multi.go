package algorithms

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Several limits on one request (10 per second and 1,000 per hour), checked at once:
// a request is admitted only if every limit admits it, and a denial consumes nothing
// from any of them. MultiRedis does it in one script call, atomic, one round trip;
// MultiModel is the same composition of the Go models, its oracle.

//go:embed lua/multi.lua
var multiLua string

// multiScript is one script for every combination: the prelude's helpers, each
// algorithm's script as a function, and the driver, multi.lua.
var multiScript = redis.NewScript(multiSource())

// multiSource builds the combined script (see composed).
func multiSource() string {
	return composed("ratelab multi-limit check, generated from the algorithms' scripts (algorithms/multi.go)", multiLua)
}

// composed is the prelude's helpers, each algorithm's script wrapped as
// check[name](redis, key, limit, window, burst, now, ARGV), and driver. The names each
// script's text uses become the function's parameters, so the very text that decides
// a single check decides it in the driver's call (with its writes deferred, when the
// driver gives it a redis that defers them).
func composed(title, driver string) string {
	helpers := prelude[strings.Index(prelude, "local floor = math.floor"):]
	var b strings.Builder
	b.WriteString("-- " + title + "\n")
	b.WriteString(helpers)
	b.WriteString("local check = {}\n")
	for _, name := range order {
		fmt.Fprintf(&b, "check[%q] = function(redis, key, limit, window, burst, now, ARGV)\n%s\nend\n", name, specs[name].lua)
	}
	b.WriteString(driver)
	return b.String()
}

// MaxLimitsPerCheck bounds the limits of one combined check.
const MaxLimitsPerCheck = 16

// NamedLimit is one limit of a combined check: a name (for headers and key names),
// an algorithm and its policy.
type NamedLimit struct {
	Name      string `json:"name"`
	Algorithm string `json:"algorithm"`
	Policy    Policy `json:"policy"`
}

// ErrInvalidLimits is wrapped by the errors for a set of limits that cannot be combined.
var ErrInvalidLimits = errors.New("invalid limits")

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// scopePattern is what a rule's name in a key may be: no ':' (the key's field
// separator), no braces (the hash tag), no glob characters.
var scopePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@/=+-]{0,127}$`)

// CheckLimitName says whether name can name a limit: 1 to 64 of [A-Za-z0-9_.-],
// starting with a letter or digit.
func CheckLimitName(name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("%w: name %q: use 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit", ErrInvalidLimits, name)
	}
	return nil
}

// CheckScope says whether scope can name a rule in key names: 1 to 128 of
// [A-Za-z0-9_.@/=+-], starting with a letter or digit.
func CheckScope(scope string) error {
	if !scopePattern.MatchString(scope) {
		return fmt.Errorf("%w: rule name %q: use 1 to 128 letters, digits or any of _.@/=+-, starting with a letter or digit", ErrInvalidLimits, scope)
	}
	return nil
}

func checkLimits(limits []NamedLimit) error {
	if len(limits) == 0 {
		return fmt.Errorf("%w: no limits", ErrInvalidLimits)
	}
	if len(limits) > MaxLimitsPerCheck {
		return fmt.Errorf("%w: %d limits; at most %d are checked at once", ErrInvalidLimits, len(limits), MaxLimitsPerCheck)
	}
	seen := map[string]bool{}
	for _, l := range limits {
		if err := CheckLimitName(l.Name); err != nil {
			return err
		}
		if seen[l.Name] {
			return fmt.Errorf("%w: two limits are named %q", ErrInvalidLimits, l.Name)
		}
		seen[l.Name] = true
		if _, err := lookup(l.Algorithm, l.Policy); err != nil {
			return fmt.Errorf("limit %s: %w", l.Name, err)
		}
	}
	return nil
}

// MultiDecision is the answer of a combined check.
type MultiDecision struct {
	// Allowed reports whether every limit admitted the request (and so each counted it).
	Allowed bool `json:"allowed"`
	// Limits are the decisions of each limit, in the order given. When the request is
	// denied nothing was consumed: a limit that would have admitted it reports
	// Allowed, its Remaining as it stands (before this request), no Delay.
	Limits []Decision `json:"limits"`
	// DeniedBy is the index of the limit that denied, the one with the longest
	// RetryAfter when several did; -1 when allowed.
	DeniedBy int `json:"denied_by"`
	// RetryAfter is the wait after which every limit admits (the longest of the
	// denying limits' waits: a limit that admits now still admits later, when nothing
	// else is admitted); 0 when allowed.
	RetryAfter time.Duration `json:"-"`
	// Delay is the longest Delay of the limits (leaky bucket), 0 otherwise.
	Delay time.Duration `json:"-"`
	// TimeMicros is the server time of the decision, the same for every limit.
	TimeMicros int64 `json:"time_us"`
}

// Closest is the index of the limit nearest to denying: the denying one when denied,
// else the one with the fewest Remaining (the first of those).
func (d MultiDecision) Closest() int {
	if !d.Allowed {
		return d.DeniedBy
	}
	best := 0
	for i, l := range d.Limits {
		if l.Remaining < d.Limits[best].Remaining {
			best = i
		}
	}
	return best
}

// combine turns each limit's own decision into the combined one: admitted only if
// all admitted.
func combine(ds []Decision) MultiDecision {
	m := MultiDecision{Allowed: true, Limits: ds, DeniedBy: -1}
	for i, d := range ds {
		m.TimeMicros = d.TimeMicros
		if !d.Allowed {
			m.Allowed = false
			if m.DeniedBy < 0 || d.RetryAfter > m.RetryAfter {
				m.DeniedBy, m.RetryAfter = i, d.RetryAfter
			}
		}
	}
	for i := range ds {
		if m.Allowed {
			m.Delay = max(m.Delay, ds[i].Delay)
		} else if ds[i].Allowed {
			// It consumed nothing: one more than it would have left after this request.
			ds[i].Remaining++
			ds[i].Delay, ds[i].since, ds[i].seq = 0, 0, 0
		}
	}
	return m
}

// MultiRedis checks several limits of one identity in one script call: atomic, one
// round trip, every key in the identity's hash slot. It is safe for concurrent use.
type MultiRedis struct {
	limits []NamedLimit
	rdb    redis.Scripter
	// heads are each limit's key up to the identity, without the closing brace.
	heads []string
	// args is the fixed ARGV; args[0] is the time, set per call.
	args []any
	// batch, when set, shares round trips between concurrent checks (WithBatching).
	batch *batcher
	// deny, when set, answers checks of a denied identity locally (WithDenyCache).
	deny *denyCache[MultiDecision]
	// local counts checks the deny cache answered; calls counts script calls sent.
	local, calls atomic.Int64
}

// NewMultiRedis returns a combined limiter of limits under keys, the limits of the
// rule named scope (which becomes part of every key name, see Keyspace.RuleLimiter).
// opts tune a leaky bucket among them (WithMaxDelay) and the limiter as they tune a
// Redis limiter: WithBatching shares round trips between concurrent checks,
// WithDenyCache answers the checks of an identity that Redis denied locally until
// the combined RetryAfter has passed (see multicache.go for why that is exact).
func NewMultiRedis(rdb redis.Scripter, keys Keyspace, scope string, limits []NamedLimit, opts ...Option) (*MultiRedis, error) {
	if err := checkLimits(limits); err != nil {
		return nil, err
	}
	if err := CheckScope(scope); err != nil {
		return nil, err
	}
	if keys.prefix == "" {
		return nil, fmt.Errorf("%w: the keyspace has no prefix", ErrInvalidPrefix)
	}
	o, err := applyOptions(opts)
	if err != nil {
		return nil, err
	}
	m := &MultiRedis{limits: append([]NamedLimit(nil), limits...), rdb: rdb, args: []any{""}}
	for _, l := range limits {
		head := keys.RuleLimiter(l.Algorithm, l.Policy, scope, l.Name, "")
		m.heads = append(m.heads, head[:len(head)-1])
		var maxDelay int64
		if l.Algorithm == LeakyBucket {
			maxDelay = o.leakyMaxDelay(l.Policy)
		}
		m.args = append(m.args, l.Algorithm, l.Policy.Limit, l.Policy.WindowMicros(), l.Policy.EffectiveBurst(), maxDelay)
	}
	if o.batch {
		pl, ok := rdb.(pipeliner)
		if !ok {
			return nil, fmt.Errorf("%w: batching needs a client that pipelines (*redis.Client, *redis.ClusterClient); %T does not", ErrInvalidOption, rdb)
		}
		m.batch = &batcher{rdb: pl, script: multiScript, maxInFlight: o.batchInFlight, maxSize: o.batchSize}
		if _, cluster := rdb.(*redis.ClusterClient); !cluster && !o.batchPipelined {
			m.batch.algorithm = multiBatch
		}
	}
	if o.denyCache > 0 {
		m.deny = newDenyCache[MultiDecision](o.denyCache)
	}
	return m, nil
}

// Limits are the limits checked, in order.
func (m *MultiRedis) Limits() []NamedLimit { return append([]NamedLimit(nil), m.limits...) }

// StateKeys are the Redis keys that hold identity's state, one per limit, in order.
func (m *MultiRedis) StateKeys(identity string) ([]string, error) {
	id, err := NormalizeIdentity(identity)
	if err != nil {
		return nil, err
	}
	return m.keysOf(id), nil
}

// keysOf are the state keys of id, a normalized identity.
func (m *MultiRedis) keysOf(id string) []string {
	keys := make([]string, len(m.heads))
	for i, h := range m.heads {
		keys[i] = h + id + "}"
	}
	return keys
}

// Allow decides one request of identity against every limit at the server's time.
func (m *MultiRedis) Allow(ctx context.Context, identity string) (MultiDecision, error) {
	return m.allow(ctx, identity, "", 0)
}

// AllowAt is Allow as if the server's clock read now, for tests and virtual clocks.
func (m *MultiRedis) AllowAt(ctx context.Context, identity string, now time.Time) (MultiDecision, error) {
	return m.allow(ctx, identity, strconv.FormatInt(now.UnixMicro(), 10), now.UnixMicro())
}

// allow decides one request of identity at now ("" for the server's TIME; nowMicros
// is its value).
func (m *MultiRedis) allow(ctx context.Context, identity, now string, nowMicros int64) (MultiDecision, error) {
	id, err := NormalizeIdentity(identity)
	if err != nil {
		return MultiDecision{}, err
	}
	virtual := now != ""
	if m.deny != nil {
		if !virtual {
			nowMicros = monoMicros()
		}
		if d, ok := m.deny.lookup(id, nowMicros, virtual); ok {
			m.local.Add(1)
			return d, nil
		}
	}
	keys := m.keysOf(id)
	args := append([]any(nil), m.args...)
	args[0] = now
	m.calls.Add(1)
	var res []int64
	if m.batch != nil {
		res, err = m.batch.run(ctx, keys, args)
	} else {
		res, err = runMulti(ctx, m.rdb, keys, args)
	}
	if err != nil {
		return MultiDecision{}, fmt.Errorf("combined check: %w", err)
	}
	if len(res) != 1+8*len(m.limits) {
		return MultiDecision{}, fmt.Errorf("combined check: %w: %d values", ErrBadReply, len(res))
	}
	ds := make([]Decision, len(m.limits))
	for i, l := range m.limits {
		r := res[1+8*i:]
		ds[i] = decision(r[0] == 1, l.Policy.Limit, r[1], r[2], r[3], r[4], r[5])
		ds[i].since, ds[i].seq = r[6], r[7]
	}
	d := combine(ds)
	if d.Allowed != (res[0] == 1) {
		return MultiDecision{}, fmt.Errorf("combined check: %w: the script's verdict disagrees with its limits'", ErrBadReply)
	}
	if m.deny != nil && !d.Allowed {
		kept := d
		kept.Limits = slices.Clone(d.Limits) // the caller's copy is its own
		m.deny.add(id, kept, nowMicros, virtual)
	}
	return d, nil
}

// runMulti issues one unbatched combined check's script; with WithBatching the
// limiter's batcher sends it instead.
func runMulti(ctx context.Context, rdb redis.Scripter, keys []string, args []any) ([]int64, error) {
	return multiScript.Run(ctx, rdb, keys, args...).Int64Slice()
}

// MultiModel is the Go model of a combined check of one identity: each limit's model
// decides on a copy of its state, and the copies replace the states only when every
// limit admits. Not safe for concurrent use.
type MultiModel struct {
	models []model
}

// NewMultiModel returns fresh state for limits, tuned by opts as NewMultiRedis is.
func NewMultiModel(limits []NamedLimit, opts ...Option) (*MultiModel, error) {
	if err := checkLimits(limits); err != nil {
		return nil, err
	}
	o, err := applyOptions(opts)
	if err != nil {
		return nil, err
	}
	m := &MultiModel{}
	for _, l := range limits {
		m.models = append(m.models, specs[l.Algorithm].model(l.Policy, o))
	}
	return m, nil
}

// Allow decides a request at now (µs) against every limit.
func (m *MultiModel) Allow(now int64) MultiDecision {
	trial := make([]model, len(m.models))
	ds := make([]Decision, len(m.models))
	for i, s := range m.models {
		trial[i] = copyState(s)
		ds[i] = trial[i].Allow(now)
	}
	d := combine(ds)
	if d.Allowed {
		m.models = trial
	}
	return d
}

// copyState copies a model's state, so that a decision on the copy leaves it as it is.
func copyState(s model) model {
	switch v := s.(type) {
	case *fixedWindow:
		c := *v
		return &c
	case *slidingLog:
		c := *v
		c.times = append([]int64(nil), v.times...)
		return &c
	case *slidingCounter:
		c := *v
		return &c
	case *tokenBucket:
		c := *v
		return &c
	case *leakyBucket:
		c := *v
		return &c
	case *gcra:
		c := *v
		return &c
	}
	panic(fmt.Sprintf("algorithms: no copy for model %T", s))
}
