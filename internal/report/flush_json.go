package report

import "io"

// FlushJSON writes what a flush did as the versioned JSON; the key lists are empty
// lists, never null (Keys only in a dry run).
func FlushJSON(w io.Writer, f Flush) error {
	f.SchemaVersion = FlushSchemaVersion
	if f.UndecodableKeys == nil {
		f.UndecodableKeys = []string{}
	}
	if f.DryRun && f.Keys == nil {
		f.Keys = []string{}
	}
	return writeJSON(w, f)
}
