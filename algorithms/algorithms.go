// Package algorithms holds ratelab's rate limiters: for each of six algorithms one
// atomic Lua script for Redis, a pure Go model of the same decisions (the oracle the
// scripts are tested against), and an in-memory per-node variant built on the model.
//
// All arithmetic is on integer microseconds. Fractions of a token or of an emission
// interval are kept exact by counting in small units (1/window of a token, 1/limit of
// a microsecond), so a script and its model agree on every decision, to the microsecond.
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
	Allow(now int64) Decision
}

//go:embed lua/prelude.lua
var prelude string

type spec struct {
	name    string
	summary string
	script  *redis.Script
	model   func(Policy) Model
	// worst is the most requests the algorithm can admit for one identity in any window W.
	worst func(Policy) int64
}

func newScript(body string) *redis.Script { return redis.NewScript(prelude + body) }

// order is the order in which algorithms are listed and compared.
var order = []string{FixedWindow, SlidingLog, SlidingCounter, TokenBucket, LeakyBucket, GCRA}

var specs = map[string]*spec{
	FixedWindow: {
		name: FixedWindow, summary: "a counter per epoch-aligned window; up to 2L across a boundary",
		script: fixedWindowScript, model: newFixedWindow,
		worst: func(p Policy) int64 { return 2 * p.Limit },
	},
	SlidingLog: {
		name: SlidingLog, summary: "a sorted set of admitted times; exactly L in any window",
		script: slidingLogScript, model: newSlidingLog,
		worst: func(p Policy) int64 { return p.Limit },
	},
	SlidingCounter: {
		name: SlidingCounter, summary: "two window counters, the previous one weighted; about L, 2L-1 at worst",
		script: slidingCounterScript, model: newSlidingCounter,
		worst: func(p Policy) int64 { return 2*p.Limit - 1 },
	},
	TokenBucket: {
		name: TokenBucket, summary: "B tokens refilled at L/W; a burst of B, then L per window",
		script: tokenBucketScript, model: newTokenBucket,
		worst: func(p Policy) int64 { return p.EffectiveBurst() + p.Limit },
	},
	LeakyBucket: {
		name: LeakyBucket, summary: "a queue of B leaking at L/W; admitted requests wait their turn",
		script: leakyBucketScript, model: newLeakyBucket,
		worst: func(p Policy) int64 { return p.EffectiveBurst() + p.Limit },
	},
	GCRA: {
		name: GCRA, summary: "a theoretical arrival time; token bucket's decisions in one number",
		script: gcraScript, model: newGCRA,
		worst: func(p Policy) int64 { return p.EffectiveBurst() + p.Limit },
	},
}

// Names lists the algorithms in the order ratelab compares them.
func Names() []string { return append([]string(nil), order...) }

// Summary describes an algorithm in one line.
func Summary(name string) string {
	if s, ok := specs[name]; ok {
		return s.summary
	}
	return ""
}

// Lookup checks an algorithm name, with an error that lists the known ones.
func Lookup(name string) error {
	if _, ok := specs[name]; !ok {
		return fmt.Errorf("%w %q; choose one of %s", ErrUnknownAlgorithm, name, strings.Join(order, ", "))
	}
	return nil
}

// NewModel returns a fresh model of one identity's state under the named algorithm.
func NewModel(name string, p Policy) (Model, error) {
	s, err := lookup(name, p)
	if err != nil {
		return nil, err
	}
	return s.model(p), nil
}

// ExpectedMaxInWindow is the most requests the algorithm can admit for one identity
// in any interval of length W under policy p: its worst case, the bound a measured
// peak is compared with.
func ExpectedMaxInWindow(name string, p Policy) int64 {
	if s, ok := specs[name]; ok {
		return s.worst(p)
	}
	return 0
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
