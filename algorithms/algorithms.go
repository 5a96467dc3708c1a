package algorithms

import (
	_ "embed"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// The algorithm names, as flags and key names spell them.
const (
	FixedWindow    = "fixed-window"
	SlidingLog     = "sliding-log"
	SlidingCounter = "sliding-counter"
	TokenBucket    = "token-bucket"
	LeakyBucket    = "leaky-bucket"
	GCRA           = "gcra"
)

// ErrUnknownAlgorithm is wrapped by the error for a name that is not an algorithm.
var ErrUnknownAlgorithm = errors.New("unknown algorithm")

// Model is one identity's state under one algorithm, in Go: Allow decides a request
// at now (microseconds since the epoch) and updates the state exactly as the Lua
// script updates Redis. Models are not safe for concurrent use.
type Model interface {
	// Allow decides a request at now.
	Allow(now int64) Decision
	// GiveBack returns the slot of d, a Decision this model made, at now, and reports
	// whether it did. Only the leaky bucket gives back, and only the slot of a request
	// still waiting in its queue (see Redis.GiveBack); the others always report false.
	GiveBack(d Decision, now int64) bool
}

// model is what every algorithm's model is: a Model that can also say what its state
// means at a moment without changing it (DecodeState, inspect).
type model interface {
	Model
	peek(now int64) peek
	// capacity is Remaining when the state is fresh.
	capacity() int64
}

//go:embed lua/prelude.lua
var prelude string

// spec is everything ratelab knows about one algorithm. Each algorithm's file
// defines its script, its model and its loader; specs ties them to the name.
type spec struct {
	name string
	// lua is the algorithm's script without the prelude; script is prelude + lua.
	lua    string
	script *redis.Script
	model  func(Policy, options) model
	// load reads the model back from a key's raw content, as the script wrote it.
	load func(Policy, options, Content) (model, error)
	// worst is the most requests the algorithm can admit for one identity in any window W.
	worst func(Policy) int64
}

func newSpec(name, lua string, newModel func(Policy, options) model, load func(Policy, options, Content) (model, error), worst func(Policy) int64) *spec {
	return &spec{name: name, lua: lua, script: redis.NewScript(prelude + lua), model: newModel, load: load, worst: worst}
}

// order is the order in which algorithms are listed and compared.
var order = []string{FixedWindow, SlidingLog, SlidingCounter, TokenBucket, LeakyBucket, GCRA}

var specs = map[string]*spec{
	FixedWindow: newSpec(FixedWindow, fixedWindowLua, newFixedWindow, loadFixedWindow,
		func(p Policy) int64 { return 2 * p.Limit }),
	SlidingLog: newSpec(SlidingLog, slidingLogLua, newSlidingLog, loadSlidingLog,
		func(p Policy) int64 { return p.Limit }),
	SlidingCounter: newSpec(SlidingCounter, slidingCounterLua, newSlidingCounter, loadSlidingCounter,
		func(p Policy) int64 { return 2*p.Limit - 1 }),
	TokenBucket: newSpec(TokenBucket, tokenBucketLua, newTokenBucket, loadTokenBucket,
		func(p Policy) int64 { return p.EffectiveBurst() + p.Limit }),
	LeakyBucket: newSpec(LeakyBucket, leakyBucketLua, newLeakyBucket, loadLeakyBucket,
		func(p Policy) int64 { return p.EffectiveBurst() + p.Limit }),
	GCRA: newSpec(GCRA, gcraLua, newGCRA, loadGCRA,
		func(p Policy) int64 { return p.EffectiveBurst() + p.Limit }),
}

// Names lists the algorithms in the order ratelab compares them.
func Names() []string { return append([]string(nil), order...) }

// Lookup checks an algorithm name, with an error that lists the known ones.
func Lookup(name string) error {
	if _, ok := specs[name]; !ok {
		return fmt.Errorf("%w %q; choose one of %s", ErrUnknownAlgorithm, name, strings.Join(order, ", "))
	}
	return nil
}

// NewModel returns a fresh model of one identity's state under the named algorithm,
// tuned by opts (WithMaxDelay) as a limiter with the same options is.
func NewModel(name string, p Policy, opts ...Option) (Model, error) {
	s, err := lookup(name, p)
	if err != nil {
		return nil, err
	}
	o, err := applyOptions(opts)
	if err != nil {
		return nil, err
	}
	return s.model(p, o), nil
}

// ExpectedMaxInWindow is the most requests the algorithm can admit for one identity
// in any interval of length W under policy p: its worst case, the bound a measured
// peak is compared with. It is 0 for an unknown name.
func ExpectedMaxInWindow(name string, p Policy) int64 {
	if s, ok := specs[name]; ok {
		return s.worst(p)
	}
	return 0
}

// ScriptSource is the exact Lua text the named algorithm sends to Redis (the shared
// prelude followed by the algorithm's script), or "" for an unknown name. Its SHA-1 is
// the one EVALSHA uses, so tools outside Go (redis-cli SCRIPT LOAD, redis-benchmark
// EVALSHA) can run the very script ratelab runs.
func ScriptSource(name string) string {
	if s, ok := specs[name]; ok {
		return prelude + s.lua
	}
	return ""
}

func lookup(name string, p Policy) (*spec, error) {
	if err := Lookup(name); err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return specs[name], nil
}
