package commands_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/commands"
)

// TestInspectFlushPolicyKeys: the keys of a policy file's limits are decoded by
// inspect with their rule and limit in words, and flush deletes them by identity,
// leaving the keys of other identities.
func TestInspectFlushPolicyKeys(t *testing.T) {
	for _, b := range backendsWithCluster(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			limits := []algorithms.NamedLimit{
				{Name: "per-second", Algorithm: algorithms.TokenBucket, Policy: algorithms.Policy{Limit: 10, Window: time.Second, Burst: 20}},
				{Name: "per-hour", Algorithm: algorithms.SlidingLog, Policy: algorithms.Policy{Limit: 50, Window: time.Hour}},
			}
			m, err := algorithms.NewMultiRedis(b.Client, algorithms.MustKeyspace("inspol"), "GET/products/id@free", limits)
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{"10.0.0.7", "10.0.0.8"} {
				for range 3 {
					if _, err := m.Allow(ctx, id); err != nil {
						t.Fatal(err)
					}
				}
			}
			keys, err := m.StateKeys("10.0.0.7")
			if err != nil {
				t.Fatal(err)
			}
			k := inspectJSON(t, b, "inspol", keys[1])
			if k.Rule != "GET/products/id@free" || k.Limit != "per-hour" || k.Algorithm != algorithms.SlidingLog || k.Identity != "10.0.0.7" {
				t.Fatalf("decoded %+v", k)
			}
			if want := "limit per-hour of rule GET/products/id@free: sliding-log 50/1h for 10.0.0.7: 3 admitted in the last 1h, 47 left"; !strings.HasPrefix(k.Summary, want) {
				t.Fatalf("summary %q, want it to start %q", k.Summary, want)
			}
			ios, _, _, _ := commands.TestIO()
			f, err := runFlush(t, ios, commands.FlushOptions{Global: commands.Global{RedisURL: b.URL(), Prefix: "inspol"}, Identity: "10.0.0.7", Yes: true})
			if err != nil {
				t.Fatal(err)
			}
			if f.Deleted != 2 || f.Undecodable != 0 {
				t.Fatalf("flush --ip 10.0.0.7: %+v; want its 2 keys deleted", f)
			}
			others, _ := m.StateKeys("10.0.0.8")
			for _, key := range append(keys, others...) {
				n, err := b.Client.Exists(ctx, key).Result()
				if err != nil {
					t.Fatal(err)
				}
				if want := int64(map[bool]int{true: 0, false: 1}[strings.Contains(key, "10.0.0.7")]); n != want {
					t.Errorf("%s: exists %d after the flush, want %d", key, n, want)
				}
			}
		})
	}
}
