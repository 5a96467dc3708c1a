package cmd

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/redistest"
)

// rawBytes says what in out would act on a terminal: a control byte other than a line
// break, DEL, a C1 control character, or bytes that are not UTF-8.
func rawBytes(out string) string {
	for i := 0; i < len(out); {
		r, size := utf8.DecodeRuneInString(out[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			return "invalid UTF-8 at byte " + strconv.Itoa(i)
		case r < ' ' && r != '\n', r == 0x7f, r >= 0x80 && r <= 0x9f, r == '\u202e':
			return "the raw character " + string(utf8.AppendRune(nil, r)) + " at byte " + strconv.Itoa(i)
		}
		i += size
	}
	return ""
}

// TestNoControlBytesReachTheTerminal: key names, values and errors with escape
// sequences, bells, line breaks, C1 controls and bad UTF-8 are shown escaped in every
// view of inspect and flush, and flush deletes none of the keys that are not of a form
// ratelab writes.
func TestNoControlBytesReachTheTerminal(t *testing.T) {
	const prefix = "termtest"
	evil := []string{
		prefix + ":\x1b[2J\x1b]0;owned\x07",
		prefix + ":rl:gcra:10r1s:{10.0.0.7\x1b[31m}",
		prefix + ":rl:gcra:10r1s:{010.0.0.7}",
		prefix + ":product:{../../etc}",
		prefix + ":\u009b31mC1\nline",
		prefix + ":bad\xffutf8",
		prefix + ":" + strings.Repeat("\x1b[1m", 100),
	}
	for _, b := range redistest.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			for i, k := range evil {
				b.Client.Set(ctx, k, "x\x1b[31m", 0) // no TTL: the summary lists them
				if i%2 == 0 {
					b.Client.Expire(ctx, k, time.Hour)
				}
			}
			// A key of ratelab's whose content carries the escapes.
			product := prefix + ":product:{7}"
			b.Client.HSet(ctx, product, "v", "\x1b]0;title\x07{}", "nf", "0", "x", "99999999999999", "g", "0")
			b.Client.Expire(ctx, product, time.Hour)
			lim, err := algorithms.NewRedis(b.Client, algorithms.MustKeyspace(prefix), algorithms.SlidingLog, algorithms.Policy{Limit: 5, Window: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := lim.Allow(ctx, "10.0.0.7"); err != nil {
				t.Fatal(err)
			}
			base := []string{"--redis", b.URL(), "--prefix", prefix}
			views := [][]string{
				{"inspect"},
				{"inspect", "--ip", "10.0.0.7"},
				{"inspect", product},
				{"flush", "--dry-run"},
			}
			for _, k := range evil {
				views = append(views, []string{"inspect", k})
			}
			views = append(views, []string{"flush", "--yes"})
			for _, v := range views {
				code, out, errOut := run(t, append(base, v...)...)
				t.Logf("%q: exit %d\n%s%s", v, code, out, errOut)
				if what := rawBytes(out + errOut); what != "" {
					t.Errorf("%q (exit %d) printed %s:\n%q\n%q", v, code, what, out, errOut)
				}
			}
			for _, k := range evil {
				if n, _ := b.Client.Exists(ctx, k).Result(); n != 1 {
					t.Errorf("flush deleted %q, which is not of a form ratelab writes", k)
				}
			}
			if n, _ := b.Client.Exists(ctx, product).Result(); n != 0 {
				t.Errorf("flush left ratelab's own %q", product)
			}
		})
	}
}
