package commands

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/schollz/progressbar/v3"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/redisconn"
	"github.com/ratelab/ratelab/internal/report"
)

// The kinds of key --kind selects.
const (
	FlushKindAll   = "all"
	FlushKindRL    = "rl"
	FlushKindCache = "cache"
)

// FlushOptions are the options of `ratelab flush`.
type FlushOptions struct {
	Global
	// Kind is FlushKindAll, FlushKindRL (limiter state) or FlushKindCache (products and
	// their fill locks); Normalize makes empty all, or rl when Algorithm or Identity is set.
	Kind string
	// Algorithm narrows limiter keys to one algorithm.
	Algorithm string
	// Identity narrows limiter keys to one normalised identity.
	Identity string
	// DryRun lists what would be deleted and deletes nothing.
	DryRun bool
	// Yes deletes without asking; off a terminal it is required.
	Yes bool
	// Output is report.FormatTable or report.FormatJSON.
	Output string
	// BatchSize is how many keys one UNLINK (or one pipeline on a cluster) deletes;
	// Normalize makes 0 DefaultFlushBatch.
	BatchSize int
}

// DefaultFlushBatch is how many keys flush deletes per round trip.
const DefaultFlushBatch = 1000

// flushAskAbove is the handful of keys flush deletes on a terminal without asking.
const flushAskAbove = 10

// flushProgressAbove is how many keys make a progress bar worth showing.
const flushProgressAbove = 5000

// ErrNotConfirmed is returned when the user does not confirm a flush.
var ErrNotConfirmed = errors.New("flush not confirmed; nothing deleted")

// Flush deletes ratelab's keys under the prefix, narrowed by kind, algorithm and
// identity, with SCAN and UNLINK in batches on every master: never KEYS, FLUSHDB or
// FLUSHALL. Every key is parsed before it is deleted: keys outside the prefix are
// never touched, and keys under it that are not of a form ratelab writes are
// reported and left alone, since they may belong to someone else. opts are normalized
// and validated (FlushOptions.Normalize and Validate), as cmd does.
func Flush(ctx context.Context, opts FlushOptions, ios IO) error {
	keys, err := algorithms.NewKeyspace(opts.Prefix)
	if err != nil {
		return err
	}
	if !opts.DryRun && !opts.Yes && !ios.ErrIsTerminal {
		return Usagef("flush deletes keys and there is no terminal to confirm on: pass --yes (or --dry-run to see what would go)")
	}
	conn, err := redisconn.Open(ctx, opts.RedisURL, redisconn.Options{})
	if err != nil {
		return err
	}
	defer conn.Close()

	start := time.Now()
	f := report.Flush{
		Backend: conn.Backend, Prefix: keys.Prefix(), DryRun: opts.DryRun,
		Patterns: flushPatterns(keys, opts), ByKind: map[string]int64{}, ByAlgorithm: map[string]int64{},
	}
	matched, err := flushCollect(ctx, conn, keys, opts, &f)
	if err != nil {
		return err
	}
	if opts.DryRun {
		f.Keys = matched
		f.ElapsedMillis = time.Since(start).Milliseconds()
		if err := report.WriteFlush(ios.Out, opts.Output, f); err != nil {
			return err
		}
		return report.WriteFlushWarnings(ios.ErrOut, f)
	}
	if len(matched) > flushAskAbove && !opts.Yes {
		ok, err := confirm(ios, fmt.Sprintf("Delete %d keys under %s: on %s? [y/N] ", len(matched), keys.Prefix(), conn.Backend))
		if err != nil {
			return err
		}
		if !ok {
			return ErrNotConfirmed
		}
	}
	var bar *progressbar.ProgressBar
	if ios.ErrIsTerminal && opts.Output == report.FormatTable && len(matched) > flushProgressAbove {
		bar = progressbar.NewOptions(len(matched),
			progressbar.OptionSetWriter(ios.ErrOut),
			progressbar.OptionSetDescription("deleting"),
			progressbar.OptionShowCount(),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish())
	}
	f.Deleted, err = flushDelete(ctx, conn, matched, opts.BatchSize, bar)
	if bar != nil {
		_ = bar.Finish()
	}
	if err != nil {
		return fmt.Errorf("deleted %d of %d keys, then: %w", f.Deleted, len(matched), err)
	}
	f.ElapsedMillis = time.Since(start).Milliseconds()
	if err := report.WriteFlush(ios.Out, opts.Output, f); err != nil {
		return err
	}
	return report.WriteFlushWarnings(ios.ErrOut, f)
}

// flushPatterns are the SCAN MATCH patterns for what opts selects: the narrowest that
// Keyspace can write, every one anchored at "<prefix>:" with the prefix's globs escaped.
func flushPatterns(keys algorithms.Keyspace, opts FlushOptions) []string {
	switch {
	case opts.Kind == FlushKindCache:
		return []string{keys.MatchKind(algorithms.KindProduct, ""), keys.MatchKind(algorithms.KindLock, "")}
	case opts.Identity != "":
		return []string{keys.MatchIdentity(opts.Identity)}
	case opts.Kind == FlushKindRL:
		return []string{keys.MatchKind(algorithms.KindLimiter, opts.Algorithm)}
	}
	return []string{keys.Match()}
}

// flushSelects reports whether a parsed key is one opts asks to delete.
func flushSelects(k algorithms.Key, opts FlushOptions) bool {
	switch opts.Kind {
	case FlushKindRL:
		return k.Kind == algorithms.KindLimiter &&
			(opts.Algorithm == "" || k.Algorithm == opts.Algorithm) &&
			(opts.Identity == "" || k.Identity == opts.Identity)
	case FlushKindCache:
		return k.Kind == algorithms.KindProduct || k.Kind == algorithms.KindLock
	}
	return true
}

// flushCollect scans every master and returns the keys to delete, sorted; it counts
// them per kind and algorithm in f and records the keys it leaves alone.
func flushCollect(ctx context.Context, conn *redisconn.Conn, keys algorithms.Keyspace, opts FlushOptions, f *report.Flush) ([]string, error) {
	var (
		mu      sync.Mutex
		matched []string
	)
	err := scanMasters(ctx, conn, f.Patterns, func(_ context.Context, _ *redis.Client, page []string) error {
		mu.Lock()
		defer mu.Unlock()
		for _, k := range page {
			parsed, err := keys.Parse(k)
			if err != nil {
				// A pattern only matches under "<prefix>:", so this is a key there that
				// ratelab does not write: report it, never delete it.
				f.Undecodable++
				if len(f.UndecodableKeys) < report.InspectListLimit {
					f.UndecodableKeys = append(f.UndecodableKeys, k)
				}
				continue
			}
			if !flushSelects(parsed, opts) {
				continue
			}
			matched = append(matched, k)
			f.ByKind[string(parsed.Kind)]++
			if parsed.Kind == algorithms.KindLimiter {
				f.ByAlgorithm[parsed.Algorithm]++
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(matched)
	sort.Strings(f.UndecodableKeys)
	f.Matched = int64(len(matched))
	return matched, nil
}

// flushDelete UNLINKs keys in batches and returns how many were deleted. UNLINK
// frees memory in the background, and a batch is small, so Redis keeps answering
// other clients between batches. On a cluster a multi-key UNLINK must stay in one
// slot, so each key gets its own UNLINK, pipelined: the cluster client sends each to
// the master that holds it.
func flushDelete(ctx context.Context, conn *redisconn.Conn, matched []string, batch int, bar *progressbar.ProgressBar) (int64, error) {
	var deleted int64
	for len(matched) > 0 {
		n := min(batch, len(matched))
		page := matched[:n]
		matched = matched[n:]
		if conn.Cluster {
			pipe := conn.Client.Pipeline()
			cmds := make([]*redis.IntCmd, len(page))
			for i, k := range page {
				cmds[i] = pipe.Unlink(ctx, k)
			}
			if _, err := pipe.Exec(ctx); err != nil {
				for _, c := range cmds {
					deleted += c.Val()
				}
				return deleted, redisErr(err, conn, nil)
			}
			for _, c := range cmds {
				deleted += c.Val()
			}
		} else {
			d, err := conn.Client.Unlink(ctx, page...).Result()
			if err != nil {
				return deleted, redisErr(err, conn, nil)
			}
			deleted += d
		}
		if bar != nil {
			_ = bar.Add(n)
		}
	}
	return deleted, nil
}

// confirm asks a yes/no question on the terminal; only "y" or "yes" is a yes.
func confirm(ios IO, question string) (bool, error) {
	if ios.In == nil {
		return false, nil
	}
	if _, err := fmt.Fprint(ios.ErrOut, question); err != nil {
		return false, err
	}
	line, err := bufio.NewReader(ios.In).ReadString('\n')
	if err != nil && line == "" {
		return false, nil
	}
	answer := strings.ToLower(strings.TrimSpace(line))
	return answer == "y" || answer == "yes", nil
}
