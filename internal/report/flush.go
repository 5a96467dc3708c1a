package report

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// FlushSchemaVersion is the version of the JSON that `ratelab flush --output json`
// writes (documented in the README). Fields are only ever added.
const FlushSchemaVersion = 1

// Flush is what `ratelab flush` did, or with DryRun would do.
type Flush struct {
	SchemaVersion int    `json:"schema_version"`
	Backend       string `json:"backend"`
	Prefix        string `json:"prefix"`
	// Patterns are the SCAN MATCH patterns used, on every master.
	Patterns []string `json:"patterns"`
	DryRun   bool     `json:"dry_run"`
	// Matched is how many of ratelab's keys matched the filters; Deleted how many
	// UNLINK removed (keys that expired in between are matched, not deleted).
	Matched int64 `json:"matched"`
	Deleted int64 `json:"deleted"`
	// ByKind counts the matched keys per kind (rl, product, lock); ByAlgorithm the
	// matched limiter keys per algorithm.
	ByKind      map[string]int64 `json:"by_kind"`
	ByAlgorithm map[string]int64 `json:"by_algorithm"`
	// Keys are the matched keys, listed for a dry run only.
	Keys []string `json:"keys,omitempty"`
	// Undecodable counts keys that matched a pattern but are not of a form ratelab
	// writes: flush leaves them alone. UndecodableKeys lists up to 100 of them.
	Undecodable     int64    `json:"undecodable"`
	UndecodableKeys []string `json:"undecodable_keys"`
	// ElapsedMillis is how long the flush took.
	ElapsedMillis int64 `json:"elapsed_ms"`
}

// FlushListLimit bounds the keys the table output of a dry run lists (the JSON lists them all).
const FlushListLimit = 20

// WriteFlush writes what a flush did in format (table or json).
func WriteFlush(w io.Writer, format string, f Flush) error {
	switch format {
	case FormatJSON:
		return FlushJSON(w, f)
	case FormatTable, "":
		return FlushTable(w, f)
	}
	return inspectFormatError(format)
}

// WriteFlushWarnings writes, for the error stream, the keys a flush left alone.
func WriteFlushWarnings(w io.Writer, f Flush) error {
	if f.Undecodable == 0 {
		return nil
	}
	ew := &errWriter{w: w}
	ew.printf("warning: left %d keys under %s: that are not of a form ratelab writes; inspect them and delete them yourself if they are yours:\n",
		f.Undecodable, f.Prefix)
	for _, k := range f.UndecodableKeys {
		ew.printf("  %s\n", Shown(k))
	}
	if more := f.Undecodable - int64(len(f.UndecodableKeys)); more > 0 {
		ew.printf("  … and %d more\n", more)
	}
	return ew.err
}

// flushBreakdown is " (rl 120: fixed-window 100, gcra 20; product 3)", or "" for no keys.
func flushBreakdown(f Flush) string {
	if f.Matched == 0 {
		return ""
	}
	var parts []string
	for _, kind := range []string{"rl", "product", "lock"} {
		n := f.ByKind[kind]
		if n == 0 {
			continue
		}
		part := fmt.Sprintf("%s %d", kind, n)
		if kind == "rl" && len(f.ByAlgorithm) > 0 {
			names := make([]string, 0, len(f.ByAlgorithm))
			for a := range f.ByAlgorithm {
				names = append(names, a)
			}
			sort.Strings(names)
			algs := make([]string, len(names))
			for i, a := range names {
				algs[i] = fmt.Sprintf("%s %d", a, f.ByAlgorithm[a])
			}
			part += ": " + strings.Join(algs, ", ")
		}
		parts = append(parts, part)
	}
	return " (" + strings.Join(parts, "; ") + ")"
}
