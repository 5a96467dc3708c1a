package report

import (
	"encoding/json"
	"io"
)

// HammerJSON writes h as indented JSON.
func HammerJSON(w io.Writer, h *Hammer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(h)
}
