package report

import (
	"encoding/json"
	"io"
)

// InspectKeyJSON writes one key as the versioned JSON, its summary in words included.
func InspectKeyJSON(w io.Writer, k InspectKey) error {
	k.Summary = DescribeKey(k)
	k.SchemaVersion = InspectSchemaVersion
	return writeJSON(w, k)
}

// InspectIdentityJSON writes every limiter key of one identity as the versioned JSON;
// no keys is an empty list, never null.
func InspectIdentityJSON(w io.Writer, r InspectIdentity) error {
	keys := make([]InspectKey, len(r.Keys))
	for i, k := range r.Keys {
		k.Summary = DescribeKey(k)
		keys[i] = k
	}
	r.Keys = keys
	r.SchemaVersion = InspectSchemaVersion
	return writeJSON(w, r)
}

// InspectSummaryJSON writes a summary of the keys under a prefix as the versioned
// JSON; the key lists are empty lists, never null.
func InspectSummaryJSON(w io.Writer, s InspectSummary) error {
	s.SchemaVersion = InspectSchemaVersion
	if s.WithoutTTLKeys == nil {
		s.WithoutTTLKeys = []string{}
	}
	if s.UndecodableKeys == nil {
		s.UndecodableKeys = []string{}
	}
	return writeJSON(w, s)
}

// writeJSON writes v as indented JSON, the form of every --output json.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
