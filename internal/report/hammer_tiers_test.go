package report

import (
	"bytes"
	"strings"
	"testing"
)

// policyHammer is a policy file's report: one run, two tiers, a shadow limit.
func policyHammer() *Hammer {
	h := sampleHammer()
	h.Algorithms = h.Algorithms[:1]
	h.Algorithms[0].Name, h.Algorithms[0].Timeline = "policy", nil
	h.PolicyFile = &PolicyFile{Path: "limits.yaml", SHA256: "386c7cc35a4e56ad949710bea11f6802", Identity: "ip", TierHeader: "X-Api-Key", DefaultTier: "free"}
	h.Tiers = []Tier{
		{Tier: "free", SharePercent: 90, Clients: 45, Rule: "GET/products/id@free", Requests: 900, Admitted: 481, Denied: 419,
			Limits: []TierLimit{
				{Name: "per-second", Algorithm: "token-bucket", Policy: "10/1s burst 20", Requests: 900, Admitted: 481, DeniedBy: 400},
				{Name: "per-hour", Algorithm: "sliding-log", Policy: "50/1h", Requests: 900, Admitted: 481, DeniedBy: 19},
			}},
		{Tier: "pro", SharePercent: 10, Clients: 5, Rule: "GET/products/id@pro", Requests: 100, Admitted: 100, ShadowChecked: 100, ShadowDenied: 75,
			Limits: []TierLimit{
				{Name: "per-second", Algorithm: "gcra", Policy: "100/1s burst 200", Requests: 100, Admitted: 100},
				{Name: "candidate", Algorithm: "sliding-log", Policy: "5/1h", Shadow: true, Requests: 100, Admitted: 100, ShadowDenied: 75},
			}},
	}
	return h
}

// TestHammerTiersRendered: the table and the markdown show every tier and limit
// with its counts, shadow denials on the shadow limit only, and no peaks for the
// file's run (no single limit applies).
func TestHammerTiersRendered(t *testing.T) {
	t.Parallel()
	for _, format := range []string{FormatTable, FormatMarkdown} {
		var b bytes.Buffer
		if err := WriteHammer(&b, format, policyHammer()); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		for _, want := range []string{
			"Tiers (policy file limits.yaml, sha256 386c7cc35a4e56ad;",
			"free (90%)", "GET/products/id@free", "per-second: token-bucket 10/1s burst 20", "per-hour: sliding-log 50/1h",
			"pro (10%)", "candidate: sliding-log 5/1h (shadow)", "the file's",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: no %q in\n%s", format, want, out)
			}
		}
		for _, line := range strings.Split(out, "\n") {
			cells := splitCells(line)
			switch {
			case len(cells) > 2 && strings.HasPrefix(cells[2], "per-hour"):
				if cells[7] != "19" || cells[8] != "-" {
					t.Errorf("%s: per-hour row %q: want 19 denied by it, no shadow denials", format, cells)
				}
			case len(cells) > 2 && strings.HasPrefix(cells[2], "candidate"):
				if cells[7] != "-" || cells[8] != "75" {
					t.Errorf("%s: candidate row %q: want no denials, 75 shadow denials", format, cells)
				}
			case len(cells) > 10 && cells[0] == "policy":
				if cells[1] != "the file's" || cells[7] != "-" || cells[10] != "-" {
					t.Errorf("%s: the file's run shows peaks: %q", format, cells)
				}
			}
		}
	}
}

// splitCells splits a table or markdown row into its trimmed cells.
func splitCells(line string) []string {
	line = strings.NewReplacer("│", "|").Replace(line)
	if !strings.HasPrefix(strings.TrimSpace(line), "|") {
		return nil
	}
	parts := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}
