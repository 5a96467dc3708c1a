package report

import (
	"fmt"
	"strconv"
)

// A policy file's run (hammer --limits): the file, and per client tier and per limit
// what the answers' headers said.

// PolicyFile is the policy file a run's nodes decided by.
type PolicyFile struct {
	// Path is --limits as given.
	Path string `json:"path"`
	// SHA256 is the file's hash (and its keys file's), as ratelab limits check and
	// serve's /metrics show it.
	SHA256 string `json:"sha256"`
	// Identity is how the file identifies clients: ip, api-key or header:NAME.
	Identity string `json:"identity"`
	// TierHeader carries the tier's key, and DefaultTier is the tier of a client
	// without a known key; both absent when the file has no tiers.
	TierHeader  string `json:"tier_header,omitempty"`
	DefaultTier string `json:"default_tier,omitempty"`
}

// Tier is what one tier's clients got.
type Tier struct {
	// Tier is the tier's name ("" when the file has no tiers: every client).
	Tier string `json:"tier"`
	// SharePercent is the tier's share of --tier-mix, in percent, and Clients the
	// simulated clients that kept the tier for the whole run.
	SharePercent float64 `json:"share_percent"`
	Clients      int     `json:"clients"`
	// Rule is the rule the tier's requests (GET /products/{id}) match in the file,
	// "" when none does (not limited); Unlimited says the rule is unlimited.
	Rule      string `json:"rule"`
	Unlimited bool   `json:"unlimited,omitempty"`
	// Requests are the answers to the tier's clients: Admitted (served), Denied
	// (429) and Errors (anything else, or no answer read as a decision).
	Requests int64 `json:"requests"`
	Admitted int64 `json:"admitted"`
	Denied   int64 `json:"denied"`
	Errors   int64 `json:"errors"`
	// DeniedUnnamed are denials whose answer named no limit.
	DeniedUnnamed int64 `json:"denied_unnamed,omitempty"`
	// ShadowChecked are the answers whose rule's shadow limits were checked, and
	// ShadowDenied those a shadow limit would have denied (they were served unless an
	// enforced limit denied them).
	ShadowChecked int64 `json:"shadow_checked"`
	ShadowDenied  int64 `json:"shadow_denied"`
	// Limits are the limits of the tier's rule, in the file's order, then any other
	// limit the answers named.
	Limits []TierLimit `json:"limits"`
}

// TierLimit is what one limit decided for a tier's clients.
type TierLimit struct {
	Name string `json:"name"`
	// Algorithm, Limit, WindowMs and Burst are the file's, and Policy them in words
	// ("10/1s burst 20"); absent for a limit that only the answers named.
	Algorithm string  `json:"algorithm,omitempty"`
	Policy    string  `json:"policy,omitempty"`
	Limit     int64   `json:"limit,omitempty"`
	WindowMs  float64 `json:"window_ms,omitempty"`
	Burst     int64   `json:"burst,omitempty"`
	// Shadow limits decide and count, never deny.
	Shadow bool `json:"shadow"`
	// Requests are the answers this limit decided (an enforced limit: those whose
	// RateLimit-Policy listed it; a shadow limit: those whose shadow limits were
	// checked), and Admitted those of them that were served.
	Requests int64 `json:"requests"`
	Admitted int64 `json:"admitted"`
	// DeniedBy are the 429s whose RateLimit header named this limit as the one that denied.
	DeniedBy int64 `json:"denied_by"`
	// ShadowDenied are the answers whose Server-Timing ratelimit-shadow named this
	// limit as the one that would have denied.
	ShadowDenied int64 `json:"shadow_denied"`
}

// policyFileRow marks a policy file's row of "What got through": its limits are
// the file's, per tier (the Tiers table), and no single limit's peaks apply.
func policyFileRow(h *Hammer, row []string) {
	if h.PolicyFile == nil {
		return
	}
	row[1] = "the file's"
	for i := 7; i < len(row); i++ {
		row[i] = "-"
	}
}

// tierSections are the policy file's part of the report: one grid of every tier and
// its limits; none without a policy file.
func tierSections(h *Hammer) []hammerSection {
	if h.PolicyFile == nil {
		return nil
	}
	g := &grid{headers: []string{"tier", "rule", "limit", "clients", "requests", "admitted", "denied", "denied by it",
		"shadow denied", "errors"}, firstNumeric: 3}
	for _, t := range h.Tiers {
		name := t.Tier
		if name == "" {
			name = "(every client)"
		}
		rule := t.Rule
		switch {
		case rule == "":
			rule = "(none: not limited)"
		case t.Unlimited:
			rule += " (unlimited)"
		}
		g.rows = append(g.rows, []string{fmt.Sprintf("%s (%s%%)", name, trimFloat(t.SharePercent)), rule, "(all)",
			strconv.Itoa(t.Clients), count(t.Requests), count(t.Admitted), count(t.Denied), "", count(t.ShadowDenied), count(t.Errors)})
		for _, l := range t.Limits {
			what := l.Name
			if l.Algorithm != "" {
				what += ": " + l.Algorithm + " " + l.Policy
			}
			denied, shadow := count(l.DeniedBy), "-"
			if l.Shadow {
				what += " (shadow)"
				denied, shadow = "-", count(l.ShadowDenied)
			}
			g.rows = append(g.rows, []string{"", "", what, "", count(l.Requests), count(l.Admitted), "", denied, shadow, ""})
		}
	}
	title := fmt.Sprintf("Tiers (policy file %s, sha256 %.16s; counted from the answers' RateLimit-Policy, RateLimit and Server-Timing)",
		Shown(h.PolicyFile.Path), h.PolicyFile.SHA256)
	return []hammerSection{{title: title, grid: g}}
}
