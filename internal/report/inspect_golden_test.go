package report

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/ratelab/ratelab/algorithms"
)

// sampleTime is the Redis server's TIME of the samples, in microseconds.
const sampleTime = 1_764_547_200_000_000

func ptr[T any](v T) *T { return &v }

// sampleKeys are one key of each form inspect shows.
func sampleKeys() []InspectKey {
	fw := algorithms.Policy{Limit: 10, Window: time.Second}
	sl := algorithms.Policy{Limit: 12, Window: time.Minute}
	tb := algorithms.Policy{Limit: 10, Window: time.Second, Burst: 20}
	zset := make([]algorithms.ZMember, 12)
	for i := range zset {
		zset[i] = algorithms.ZMember{Member: fmt.Sprintf("%d-%d", sampleTime-int64(i)*2_500_000, i), Score: float64(sampleTime - int64(i)*2_500_000)}
	}
	return []InspectKey{
		{
			Key: "ratelab:rl:fixed-window:10r1s:{10.0.0.7}", Kind: algorithms.KindLimiter, Type: "hash", TTLMillis: 412, TimeMicros: sampleTime,
			Algorithm: algorithms.FixedWindow, Policy: "10r1s", Identity: "10.0.0.7", Hash: map[string]string{"w": "1764547200", "n": "7"},
			State: &algorithms.State{Algorithm: algorithms.FixedWindow, Policy: fw, TimeMicros: sampleTime, Capacity: 10, Used: 7, Remaining: 3, ResetAfter: 412 * time.Millisecond},
		},
		{
			Key: "ratelab:rl:sliding-log:12r1m:{10.0.0.7}", Kind: algorithms.KindLimiter, Type: "zset", TTLMillis: 60_000, TimeMicros: sampleTime,
			Algorithm: algorithms.SlidingLog, Policy: "12r1m", Identity: "10.0.0.7", ZSet: zset,
			State: &algorithms.State{Algorithm: algorithms.SlidingLog, Policy: sl, TimeMicros: sampleTime, Capacity: 12, Used: 12,
				RetryAfter: 32500 * time.Millisecond, NextFree: 32500 * time.Millisecond, ResetAfter: time.Minute},
		},
		{
			Key: "ratelab:rl:token-bucket:10r1s-b20:{key-3f2a}", Kind: algorithms.KindLimiter, Type: "hash", TTLMillis: 2000, TimeMicros: sampleTime,
			Algorithm: algorithms.TokenBucket, Policy: "10r1s-b20", Identity: "key-3f2a", Hash: map[string]string{"t": "13.5", "ts": "1764547199800000"},
			State: &algorithms.State{Algorithm: algorithms.TokenBucket, Policy: tb, TimeMicros: sampleTime, Capacity: 20, Used: 6.5, Remaining: 13, ResetAfter: 650 * time.Millisecond},
		},
		{
			Key: "ratelab:product:{42}", Kind: algorithms.KindProduct, Type: "hash", TTLMillis: 299_000, TimeMicros: sampleTime, ProductID: "42",
			Hash:    map[string]string{"v": `{"id":"42","name":"Widget","price":9.99}`, "x": "1764547499000", "g": "3"},
			Product: &InspectProduct{Value: ptr(`{"id":"42","name":"Widget","price":9.99}`), ExpiresInMillis: ptr(int64(299_000)), Generation: "3"},
			Lock:    &InspectLock{Key: "ratelab:lock:product:{42}", Held: true, TTLMillis: 1500, Owner: "node-a:17"},
		},
		{
			Key: "ratelab:product:{7}", Kind: algorithms.KindProduct, Type: "hash", TTLMillis: 64_000, TimeMicros: sampleTime, ProductID: "7",
			Hash: map[string]string{"g": "12"}, Product: &InspectProduct{Generation: "12"}, Lock: &InspectLock{Key: "ratelab:lock:product:{7}"},
		},
		{
			Key: "ratelab:lock:product:{42}", Kind: algorithms.KindLock, Type: "string", TTLMillis: 1500, TimeMicros: sampleTime, ProductID: "42",
			Value: ptr("node-a:17"),
		},
	}
}

func sampleIdentity() InspectIdentity {
	keys := sampleKeys()[:3]
	keys[2] = InspectKey{Key: "ratelab:rl:gcra:10r1s:{10.0.0.7}", Kind: algorithms.KindLimiter, Type: "string", TTLMillis: 900,
		Algorithm: algorithms.GCRA, Policy: "10r1s", Identity: "10.0.0.7", Value: ptr("soon"),
		Error: `limiter state is not as ratelab writes it: the TAT "soon" is not an integer`}
	return InspectIdentity{Backend: "redis://127.0.0.1:6379", Prefix: "ratelab", Identity: "10.0.0.7", Keys: keys}
}

func sampleSummary() InspectSummary {
	return InspectSummary{
		Backend: "redis://127.0.0.1:6379", Prefix: "ratelab", Keys: 1234,
		ByKind:      map[string]int64{"rl": 1100, "product": 120, "lock": 2, "undecodable": 12},
		ByAlgorithm: map[string]int64{"fixed-window": 600, "gcra": 500},
		MemoryBytes: 3_400_000, MemoryEstimated: true, MemorySampled: 1000,
		WithoutTTL: 2, WithoutTTLKeys: []string{"ratelab:product:{9}", "ratelab:rl:gcra:10r1s:{10.0.0.9}"},
		UndecodableKeys: []string{"ratelab:junk", "ratelab:rl:magic:10r1s:{10.0.0.7}"},
	}
}

// TestInspectGolden: each inspect renderer's output for one sample of every form.
func TestInspectGolden(t *testing.T) {
	for _, format := range InspectFormats() {
		t.Run(format, func(t *testing.T) {
			var b bytes.Buffer
			for _, k := range sampleKeys() {
				fmt.Fprintf(&b, "=== %s\n", k.Key)
				if err := WriteInspectKey(&b, format, k); err != nil {
					t.Fatal(err)
				}
			}
			golden(t, "inspect_key."+format+".golden", b.Bytes())

			b.Reset()
			for _, r := range []InspectIdentity{sampleIdentity(), {Backend: "embedded", Prefix: "ratelab", Identity: "10.0.0.8"}} {
				fmt.Fprintf(&b, "=== %s\n", r.Identity)
				if err := WriteInspectIdentity(&b, format, r); err != nil {
					t.Fatal(err)
				}
			}
			golden(t, "inspect_identity."+format+".golden", b.Bytes())

			b.Reset()
			for _, s := range []InspectSummary{sampleSummary(), {Backend: "embedded", Prefix: "empty", ByKind: map[string]int64{}, ByAlgorithm: map[string]int64{}}} {
				fmt.Fprintf(&b, "=== %s\n", s.Prefix)
				if err := WriteInspectSummary(&b, format, s); err != nil {
					t.Fatal(err)
				}
			}
			golden(t, "inspect_summary."+format+".golden", b.Bytes())
		})
	}
}

func sampleFlushes() []Flush {
	keys := make([]string, 23)
	for i := range keys {
		keys[i] = fmt.Sprintf("ratelab:rl:fixed-window:10r1s:{10.0.0.%d}", i+1)
	}
	return []Flush{
		{
			Backend: "redis://127.0.0.1:6379", Prefix: "ratelab", Patterns: []string{"ratelab:*"}, Matched: 123, Deleted: 121,
			ByKind: map[string]int64{"rl": 120, "product": 3}, ByAlgorithm: map[string]int64{"gcra": 20, "fixed-window": 100},
			Undecodable: 2, UndecodableKeys: []string{"ratelab:junk", "ratelab:rl:magic:10r1s:{10.0.0.7}"}, ElapsedMillis: 42,
		},
		{
			Backend: "embedded", Prefix: "ratelab", Patterns: []string{"ratelab:rl:fixed-window:*"}, DryRun: true, Matched: 23,
			ByKind: map[string]int64{"rl": 23}, ByAlgorithm: map[string]int64{"fixed-window": 23}, Keys: keys, ElapsedMillis: 3,
		},
		{Backend: "embedded", Prefix: "ratelab", Patterns: []string{"ratelab:*"}, ByKind: map[string]int64{}, ByAlgorithm: map[string]int64{}},
	}
}

// TestFlushGolden: each flush renderer's output, and the warnings for the error stream.
func TestFlushGolden(t *testing.T) {
	for _, format := range InspectFormats() {
		t.Run(format, func(t *testing.T) {
			var b bytes.Buffer
			for i, f := range sampleFlushes() {
				fmt.Fprintf(&b, "=== flush %d\n", i+1)
				if err := WriteFlush(&b, format, f); err != nil {
					t.Fatal(err)
				}
			}
			golden(t, "flush."+format+".golden", b.Bytes())
		})
	}
	var b bytes.Buffer
	for _, f := range sampleFlushes() {
		if err := WriteFlushWarnings(&b, f); err != nil {
			t.Fatal(err)
		}
	}
	golden(t, "flush.warnings.golden", b.Bytes())
}
