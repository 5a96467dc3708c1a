package report

import (
	"fmt"
	"io"
	"time"
)

// FlushTable writes what a flush did for a terminal: one line with the count per kind
// and algorithm, and for a dry run the first FlushListLimit keys.
func FlushTable(w io.Writer, f Flush) error {
	ew := &errWriter{w: w}
	where := fmt.Sprintf("under %s: on %s", f.Prefix, f.Backend)
	if f.DryRun {
		ew.printf("would delete %d keys %s%s\n", f.Matched, where, flushBreakdown(f))
		for i, k := range f.Keys {
			if i == FlushListLimit {
				ew.printf("  … and %d more\n", len(f.Keys)-i)
				break
			}
			ew.printf("  %s\n", Shown(k))
		}
		ew.printf("nothing deleted (dry run)\n")
	} else {
		ew.printf("deleted %d keys %s%s in %s\n", f.Deleted, where, flushBreakdown(f),
			inspectDuration(time.Duration(f.ElapsedMillis)*time.Millisecond))
	}
	return ew.err
}
