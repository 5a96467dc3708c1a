package commands_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/commands"
	"github.com/ratelab/ratelab/internal/redistest"
	"github.com/ratelab/ratelab/internal/report"
)

// runFlush runs flush as cmd does, with JSON output: options normalized, validated,
// then Flush.
func runFlush(t *testing.T, ios commands.IO, opts commands.FlushOptions) (report.Flush, error) {
	t.Helper()
	opts.Output = "json"
	out := &strings.Builder{}
	ios.Out = out
	opts.Normalize()
	if err := opts.Validate(); err != nil {
		return report.Flush{}, err
	}
	err := commands.Flush(context.Background(), opts, ios)
	var f report.Flush
	if err == nil {
		if jerr := json.Unmarshal([]byte(out.String()), &f); jerr != nil {
			t.Fatalf("%v in %q", jerr, out)
		}
	}
	return f, err
}

// allKeys lists every key on every master, with SCAN.
func allKeys(t *testing.T, rdb redis.UniversalClient) map[string]bool {
	t.Helper()
	ctx := context.Background()
	var mu sync.Mutex
	found := map[string]bool{}
	scan := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, "*", 1000).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			found[iter.Val()] = true
			mu.Unlock()
		}
		return iter.Err()
	}
	var err error
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, scan)
	} else {
		err = scan(ctx, rdb.(*redis.Client))
	}
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// planted is ratelab's keys and others' in one Redis.
type planted struct {
	ours    map[string]string // key → kind/algorithm/identity tag, for narrowing
	foreign []string
}

// plant writes ratelab's keys of every kind and algorithm for 30 identities (spread
// over every master of a cluster), and foreign keys flush must never touch: other
// prefixes, look-alike prefixes, keys without TTL, and a key under the prefix that
// ratelab does not write.
func plant(t *testing.T, b redistest.Backend, prefix string) planted {
	t.Helper()
	ctx := context.Background()
	keys := algorithms.MustKeyspace(prefix)
	p := planted{ours: map[string]string{}}
	for _, name := range algorithms.Names() {
		lim, err := algorithms.NewRedis(b.Client, keys, name, algorithms.Policy{Limit: 5, Window: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 30; i++ {
			id := fmt.Sprintf("10.3.0.%d", i)
			if _, err := lim.Allow(ctx, id); err != nil {
				t.Fatal(err)
			}
			k, _ := lim.Key(id)
			p.ours[k] = "rl " + name + " " + id
		}
	}
	for i := 0; i < 10; i++ {
		id := fmt.Sprint(i)
		b.Client.Set(ctx, keys.Product(id), `{"id":1}`, time.Minute)
		p.ours[keys.Product(id)] = "product"
		if i%2 == 0 {
			b.Client.Set(ctx, keys.ProductLock(id), "owner", time.Minute)
			p.ours[keys.ProductLock(id)] = "lock"
		}
	}
	// One of ratelab's without a TTL (a bug elsewhere): flush must delete it too.
	noTTL := keys.Product("no-ttl")
	b.Client.Set(ctx, noTTL, "{}", 0)
	p.ours[noTTL] = "product"
	suffix := ":rl:gcra:5r1m:{10.3.0.1}"
	p.foreign = []string{
		"other" + suffix, prefix + "x" + suffix, prefix + "-x" + suffix, prefix + "_" + suffix,
		strings.ToUpper(prefix) + suffix, prefix, prefix + "x:product:{1}", "x" + prefix + ":product:{1}",
		prefix + ":junk:{1}",      // under the prefix, not of a form ratelab writes
		prefix + ":rl:gcra:5r1m:", // no hash tag
		"{" + prefix + "}:product:{1}",
		"session:1",
	}
	for i, k := range p.foreign {
		ttl := time.Duration(0) // most foreign keys have no TTL
		if i%3 == 0 {
			ttl = time.Hour
		}
		if err := b.Client.Set(ctx, k, "not ratelab's", ttl).Err(); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// TestFlushOnlyRatelabKeys: flush deletes every key of ratelab's under the prefix and
// nothing else, on every master of a cluster; narrowed by kind, algorithm or identity
// it deletes exactly those.
func TestFlushOnlyRatelabKeys(t *testing.T) {
	for _, b := range backendsWithCluster(t) {
		t.Run(b.Name, func(t *testing.T) {
			ios, _, _, errOut := commands.TestIO()
			g := commands.Global{RedisURL: b.URL(), Prefix: "fl"}
			p := plant(t, b, "fl")
			if b.Name == "cluster" {
				holds := map[string]int{}
				cc := b.Client.(*redis.ClusterClient)
				for k := range p.ours {
					m, err := cc.MasterForKey(context.Background(), k)
					if err != nil {
						t.Fatal(err)
					}
					holds[m.Options().Addr]++
				}
				if len(holds) != 3 {
					t.Fatalf("ratelab's keys are on %d masters, want all 3: %v", len(holds), holds)
				}
			}
			check := func(step string, gone func(tag string) bool) {
				t.Helper()
				have := allKeys(t, b.Client)
				for k, tag := range p.ours {
					if have[k] == gone(tag) {
						t.Errorf("%s: %s (%s) present=%v", step, k, tag, have[k])
					}
				}
				for _, k := range p.foreign {
					if !have[k] {
						t.Errorf("%s: foreign key %q was deleted", step, k)
					}
				}
			}
			// A dry run deletes nothing and lists what would go.
			f, err := runFlush(t, ios, commands.FlushOptions{Global: g, DryRun: true})
			if err != nil {
				t.Fatal(err)
			}
			if f.Matched != int64(len(p.ours)) || len(f.Keys) != len(p.ours) || f.Deleted != 0 {
				t.Fatalf("dry run: %+v", f)
			}
			check("dry run", func(string) bool { return false })

			f, err = runFlush(t, ios, commands.FlushOptions{Global: g, Identity: "10.3.0.7", Yes: true})
			if err != nil || f.Deleted != 6 || f.ByKind["rl"] != 6 {
				t.Fatalf("--ip: %+v %v", f, err)
			}
			check("--ip", func(tag string) bool { return strings.HasSuffix(tag, " 10.3.0.7") })

			f, err = runFlush(t, ios, commands.FlushOptions{Global: g, Algorithm: algorithms.GCRA, Yes: true})
			if err != nil || f.Deleted != 29 {
				t.Fatalf("--algorithm: %+v %v", f, err)
			}
			check("--algorithm", func(tag string) bool {
				return strings.HasSuffix(tag, " 10.3.0.7") || strings.HasPrefix(tag, "rl gcra ")
			})

			f, err = runFlush(t, ios, commands.FlushOptions{Global: g, Kind: commands.FlushKindCache, Yes: true})
			if err != nil || f.Deleted != 16 || f.ByKind["product"] != 11 || f.ByKind["lock"] != 5 {
				t.Fatalf("--kind cache: %+v %v", f, err)
			}
			check("--kind cache", func(tag string) bool {
				return strings.HasSuffix(tag, " 10.3.0.7") || strings.HasPrefix(tag, "rl gcra ") || !strings.HasPrefix(tag, "rl ")
			})

			f, err = runFlush(t, ios, commands.FlushOptions{Global: g, Yes: true})
			if err != nil || f.Deleted != int64(len(p.ours)-6-29-16) {
				t.Fatalf("everything: %+v %v", f, err)
			}
			check("everything", func(string) bool { return true })
			if f.Undecodable != 2 || !strings.Contains(errOut.String(), "fl:junk:{1}") {
				t.Fatalf("undecodable keys not reported: %+v\n%s", f, errOut)
			}
			// Every master is emptied of ratelab's keys; the foreign ones remain.
			have := allKeys(t, b.Client)
			if len(have) != len(p.foreign) {
				t.Fatalf("%d keys left, want the %d foreign ones: %v", len(have), len(p.foreign), have)
			}
		})
	}
}

// TestFlushEscapesGlobPrefix: a prefix with glob characters matches itself only.
func TestFlushEscapesGlobPrefix(t *testing.T) {
	b := redistest.All(t)[0]
	ctx := context.Background()
	ios, _, _, _ := commands.TestIO()
	for _, prefix := range []string{"ra*te", "ra?te", "ra[t]e", `ra\te`} {
		keys := algorithms.MustKeyspace(prefix)
		ours := keys.Product("1")
		lookalikes := []string{"raXte:product:{1}", "rate:product:{1}", "rate:product:{2}", "rxxte:product:{1}", "ra\\Xte:product:{1}"}
		b.Client.Set(ctx, ours, "{}", time.Minute)
		for _, k := range lookalikes {
			b.Client.Set(ctx, k, "x", 0)
		}
		f, err := runFlush(t, ios, commands.FlushOptions{Global: commands.Global{RedisURL: b.URL(), Prefix: prefix}, Yes: true})
		if err != nil || f.Deleted != 1 {
			t.Fatalf("%s: %+v %v", prefix, f, err)
		}
		have := allKeys(t, b.Client)
		for _, k := range lookalikes {
			if !have[k] {
				t.Errorf("prefix %q deleted %q", prefix, k)
			}
		}
		if have[ours] {
			t.Errorf("prefix %q left %q", prefix, ours)
		}
	}
}

// TestFlushConfirmation: off a terminal flush needs --yes; on one it asks before more
// than a handful of keys, and only "y" deletes.
func TestFlushConfirmation(t *testing.T) {
	b := redistest.Embedded(t)
	ctx := context.Background()
	keys := algorithms.MustKeyspace("conf")
	fill := func(n int) {
		for i := 0; i < n; i++ {
			b.Client.Set(ctx, keys.Product(fmt.Sprint(i)), "{}", time.Minute)
		}
	}
	count := func() int { return len(allKeys(t, b.Client)) }
	g := commands.Global{RedisURL: b.URL(), Prefix: "conf"}
	fill(20)

	ios, _, _, _ := commands.TestIO()
	_, err := runFlush(t, ios, commands.FlushOptions{Global: g})
	if commands.ExitCode(err) != commands.ExitUsage || !strings.Contains(err.Error(), "--yes") || count() != 20 {
		t.Fatalf("off a terminal without --yes: %v, %d keys left", err, count())
	}
	ios.ErrIsTerminal, ios.In = true, strings.NewReader("n\n")
	_, err = runFlush(t, ios, commands.FlushOptions{Global: g})
	if !errors.Is(err, commands.ErrNotConfirmed) || count() != 20 {
		t.Fatalf("answered no: %v, %d keys left", err, count())
	}
	if !strings.Contains(ios.ErrOut.(interface{ String() string }).String(), "Delete 20 keys under conf:") {
		t.Fatalf("no question asked: %q", ios.ErrOut)
	}
	ios.In = strings.NewReader("y\n")
	if f, err := runFlush(t, ios, commands.FlushOptions{Global: g}); err != nil || f.Deleted != 20 || count() != 0 {
		t.Fatalf("answered yes: %+v %v, %d keys left", f, err, count())
	}
	// A handful goes without a question (nothing to read on In).
	fill(10)
	ios.In = strings.NewReader("")
	if f, err := runFlush(t, ios, commands.FlushOptions{Global: g}); err != nil || f.Deleted != 10 {
		t.Fatalf("a handful: %+v %v", f, err)
	}
}

// TestFlushBadInput: bad prefixes, flags and an unreachable Redis are clear errors.
func TestFlushBadInput(t *testing.T) {
	ios, _, _, _ := commands.TestIO()
	url := redistest.Embedded(t).URL()
	cases := []struct {
		name string
		opts commands.FlushOptions
		code int
		want string
	}{
		{"empty prefix", commands.FlushOptions{Global: commands.Global{RedisURL: url}, Yes: true}, commands.ExitUsage, "prefix is empty"},
		{"wildcard prefix", commands.FlushOptions{Global: commands.Global{RedisURL: url, Prefix: "*"}, Yes: true}, commands.ExitUsage, "glob characters"},
		{"glob-only prefix", commands.FlushOptions{Global: commands.Global{RedisURL: url, Prefix: "[?]"}, Yes: true}, commands.ExitUsage, "glob characters"},
		{"bad kind", commands.FlushOptions{Global: commands.Global{RedisURL: url, Prefix: "ratelab"}, Kind: "everything", Yes: true}, commands.ExitUsage, "use rl"},
		{"bad algorithm", commands.FlushOptions{Global: commands.Global{RedisURL: url, Prefix: "ratelab"}, Algorithm: "magic", Yes: true}, commands.ExitUsage, "unknown algorithm"},
		{"cache and algorithm", commands.FlushOptions{Global: commands.Global{RedisURL: url, Prefix: "ratelab"}, Kind: "cache", Algorithm: "gcra", Yes: true}, commands.ExitUsage, "do not go with --kind cache"},
		{"unreachable", commands.FlushOptions{Global: commands.Global{RedisURL: "redis://127.0.0.1:1", Prefix: "ratelab"}, Yes: true}, commands.ExitFailure, "connection refused"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runFlush(t, ios, tc.opts)
			if commands.ExitCode(err) != tc.code || !strings.Contains(fmt.Sprint(err), tc.want) {
				t.Fatalf("got %v (exit %d), want exit %d saying %q", err, commands.ExitCode(err), tc.code, tc.want)
			}
		})
	}
}

// TestFlush100kKeysWithoutBlocking flushes 100,000 keys while another client PINGs
// in a loop: batches keep every PING answered quickly. The bound asserted is
// generous (a shared CI machine under -race); the figures are logged.
func TestFlush100kKeysWithoutBlocking(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the 100,000-key flush")
	}
	redistest.RequireServer(t)
	for _, b := range []redistest.Backend{redistest.Standalone(t), redistest.Cluster(t)} {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			keys := algorithms.MustKeyspace("big")
			p := algorithms.Policy{Limit: 10, Window: time.Second}
			const n = 100_000
			pipe := b.Client.Pipeline()
			for i := 0; i < n; i++ {
				pipe.Set(ctx, keys.Limiter(algorithms.FixedWindow, p, fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255)), "1", time.Hour)
				if i%5000 == 4999 {
					if _, err := pipe.Exec(ctx); err != nil {
						t.Fatal(err)
					}
				}
			}
			b.Client.Set(ctx, "bigx:keep", "look-alike", 0)

			pinger := redis.NewClient(&redis.Options{Addr: b.Addrs[0]})
			defer pinger.Close()
			var maxPing atomic.Int64
			var pings atomic.Int64
			stop := make(chan struct{})
			done := make(chan error, 1)
			go func() {
				for {
					select {
					case <-stop:
						done <- nil
						return
					default:
					}
					start := time.Now()
					if err := pinger.Ping(ctx).Err(); err != nil {
						done <- err
						return
					}
					d := int64(time.Since(start))
					pings.Add(1)
					for {
						m := maxPing.Load()
						if d <= m || maxPing.CompareAndSwap(m, d) {
							break
						}
					}
				}
			}()
			ios, _, _, _ := commands.TestIO()
			start := time.Now()
			f, err := runFlush(t, ios, commands.FlushOptions{Global: commands.Global{RedisURL: b.URL(), Prefix: "big"}, Yes: true})
			elapsed := time.Since(start)
			close(stop)
			if perr := <-done; perr != nil {
				t.Fatalf("PING failed during the flush: %v", perr)
			}
			if err != nil || f.Deleted != n {
				t.Fatalf("%+v %v", f, err)
			}
			have := allKeys(t, b.Client)
			if len(have) != 1 || !have["bigx:keep"] {
				t.Fatalf("left %d keys", len(have))
			}
			t.Logf("%s: flushed %d keys in %s; %d PINGs meanwhile, the slowest %s",
				b.Name, n, elapsed.Round(time.Millisecond), pings.Load(), time.Duration(maxPing.Load()).Round(time.Microsecond))
			if pings.Load() < 10 || time.Duration(maxPing.Load()) > time.Second {
				t.Fatalf("Redis was blocked: %d PINGs, the slowest %s", pings.Load(), time.Duration(maxPing.Load()))
			}
		})
	}
}

// TestNoKeysCommand: no code of ratelab's sends KEYS, FLUSHDB or FLUSHALL, which block
// or wipe a whole server; SCAN and UNLINK do the job.
func TestNoKeysCommand(t *testing.T) {
	t.Parallel()
	forbidden := regexp.MustCompile(`\.(Keys|FlushDB|FlushDBAsync|FlushAll|FlushAllAsync)\(|"(KEYS|FLUSHDB|FLUSHALL)"|` +
		`Do\(.*"(?i:keys|flushdb|flushall)"|redis\.p?call\(\s*['"](?i:keys|flushdb|flushall)['"]`)
	root := filepath.Join("..")
	checked := 0
	var found []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != root || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		// Test helpers may clean up as they like; shipped code may not.
		if d.IsDir() || strings.HasSuffix(path, "_test.go") || !(strings.HasSuffix(path, ".go") || strings.HasSuffix(path, ".lua")) {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		checked++
		for i, line := range strings.Split(string(src), "\n") {
			if forbidden.MatchString(line) {
				found = append(found, fmt.Sprintf("%s:%d: %s", path, i+1, strings.TrimSpace(line)))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 20 {
		t.Fatalf("checked only %d files; is the walk rooted at the module?", checked)
	}
	sort.Strings(found)
	if len(found) > 0 {
		t.Fatalf("KEYS/FLUSHDB/FLUSHALL used:\n%s", strings.Join(found, "\n"))
	}
	for _, bad := range []string{`rdb.Keys(ctx, "*")`, `redis.call('keys', '*')`, `rdb.Do(ctx, "keys", "*")`, `c.FlushAll(ctx)`} {
		if !forbidden.MatchString(bad) {
			t.Fatalf("the pattern misses %s", bad)
		}
	}
}
