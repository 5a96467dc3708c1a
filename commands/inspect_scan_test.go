package commands_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/commands"
	"github.com/ratelab/ratelab/internal/redisconn"
	"github.com/ratelab/ratelab/internal/redistest"
	"github.com/ratelab/ratelab/internal/report"
)

// TestInspectIdentity lists every limiter key of one identity, and only those.
func TestInspectIdentity(t *testing.T) {
	for _, b := range backendsWithCluster(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			keys := algorithms.MustKeyspace("ident")
			want := map[string]bool{}
			for _, name := range algorithms.Names() {
				lim, _ := algorithms.NewRedis(b.Client, keys, name, algorithms.Policy{Limit: 5, Window: time.Minute})
				for _, id := range []string{"10.0.0.7", "10.0.0.70", "10.0.0.8"} {
					if _, err := lim.Allow(ctx, id); err != nil {
						t.Fatal(err)
					}
				}
				k, _ := lim.Key("10.0.0.7")
				want[k] = true
			}
			out, _, err := runInspect(t, commands.InspectOptions{
				Global: commands.Global{RedisURL: b.URL(), Prefix: "ident"}, Identity: "10.0.0.7", Output: "json"})
			if err != nil {
				t.Fatal(err)
			}
			var r report.InspectIdentity
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatal(err)
			}
			if len(r.Keys) != len(want) {
				t.Fatalf("%d keys, want %d: %+v", len(r.Keys), len(want), r.Keys)
			}
			for _, k := range r.Keys {
				left := int64(4)
				if k.Algorithm == algorithms.LeakyBucket {
					left = 2 // a third would wait 36 s, beyond the default max delay of 30 s
				}
				if !want[k.Key] || k.State == nil || k.State.Remaining != left {
					t.Errorf("unexpected %+v", k)
				}
			}
			out, _, err = runInspect(t, commands.InspectOptions{
				Global: commands.Global{RedisURL: b.URL(), Prefix: "ident"}, Identity: "10.0.0.9"})
			if err != nil || !strings.Contains(out, "no limiter keys for 10.0.0.9") {
				t.Fatalf("%v %q", err, out)
			}
		})
	}
}

// TestInspectSummary counts keys per kind and algorithm, estimates memory from a
// sample, and names loudly the keys without a TTL.
func TestInspectSummary(t *testing.T) {
	for _, b := range backendsWithCluster(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			keys := algorithms.MustKeyspace("summ")
			for _, name := range []string{algorithms.GCRA, algorithms.SlidingLog} {
				lim, _ := algorithms.NewRedis(b.Client, keys, name, algorithms.Policy{Limit: 5, Window: time.Minute})
				for i := 0; i < 40; i++ {
					if _, err := lim.Allow(ctx, fmt.Sprintf("10.2.0.%d", i)); err != nil {
						t.Fatal(err)
					}
				}
			}
			for i := 0; i < 5; i++ {
				b.Client.Set(ctx, keys.Product(fmt.Sprint(i)), `{"id":1}`, time.Minute)
			}
			b.Client.Set(ctx, "summ:product:{leaky}", "never expires", 0)
			b.Client.Set(ctx, "summ:oops", "undecodable", time.Minute)
			b.Client.Set(ctx, "summx:product:{1}", "look-alike", 0)
			run := func(sample int) report.InspectSummary {
				out, _, err := runInspect(t, commands.InspectOptions{
					Global: commands.Global{RedisURL: b.URL(), Prefix: "summ"}, Output: "json", MemorySample: sample})
				if err != nil {
					t.Fatal(err)
				}
				var s report.InspectSummary
				if err := json.Unmarshal([]byte(out), &s); err != nil {
					t.Fatal(err)
				}
				return s
			}
			s := run(0)
			if s.Keys != 87 || s.ByKind["rl"] != 80 || s.ByKind["product"] != 6 || s.ByKind["undecodable"] != 1 ||
				s.ByAlgorithm[algorithms.GCRA] != 40 || s.ByAlgorithm[algorithms.SlidingLog] != 40 {
				t.Fatalf("counts: %+v", s)
			}
			if s.WithoutTTL != 1 || len(s.WithoutTTLKeys) != 1 || s.WithoutTTLKeys[0] != "summ:product:{leaky}" {
				t.Fatalf("keys without TTL: %+v", s)
			}
			if s.MemoryBytes <= 0 || s.MemoryEstimated || s.MemorySampled != 87 {
				t.Fatalf("memory: %+v", s)
			}
			sampled := run(10)
			if !sampled.MemoryEstimated || sampled.MemorySampled != 10 || sampled.MemoryBytes <= 0 {
				t.Fatalf("sampled memory: %+v", sampled)
			}
			t.Logf("memory %d B exact, %d B estimated from 10 keys", s.MemoryBytes, sampled.MemoryBytes)
			out, _, err := runInspect(t, commands.InspectOptions{Global: commands.Global{RedisURL: b.URL(), Prefix: "summ"}})
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"87 keys under summ:", "1 KEYS HAVE NO TTL", "summ:product:{leaky}", "gcra", "summ:oops"} {
				if !strings.Contains(out, want) {
					t.Errorf("text lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

// TestInspectHealthProbe: the key a serve node's /healthz writes is ratelab's, and
// inspect says what it is.
func TestInspectHealthProbe(t *testing.T) {
	b := redistest.Embedded(t)
	conn, err := redisconn.Open(context.Background(), b.URL(), redisconn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	key := algorithms.MustKeyspace("insp").Health("00ff")
	if err := conn.Probe(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	k := inspectJSON(t, b, "insp", key)
	if k.Kind != algorithms.KindHealth || k.TTLMillis <= 0 || !strings.Contains(k.Summary, "health probe") {
		t.Errorf("inspect %s: %+v; want a health probe with a TTL", key, k)
	}
}
