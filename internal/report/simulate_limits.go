package report

import (
	"fmt"
	"time"

	"github.com/ratelab/ratelab/algorithms"
)

// SimulateLimits is what a policy file (simulate --limits) decided, per rule and tier.
type SimulateLimits struct {
	File string `json:"file"`
	// SHA256 is the file's hash (and its keys file's), as serve's /metrics shows it.
	SHA256 string `json:"sha256"`
	// Identity is the file's: ip, api-key or header:NAME.
	Identity string `json:"identity"`
	// Unmatched are requests no rule matched (not limited); Unidentified those
	// without an identity serve accepts (no API key with identity api-key, or not a
	// valid identity): serve answers them 401 or 400 before any limit.
	Unmatched    int64 `json:"unmatched"`
	Unidentified int64 `json:"unidentified"`
	// Rules are each rule's figures for each tier it saw, in the file's order.
	Rules []SimulateRule `json:"rules"`
}

// SimulateRule is one rule's figures for one tier.
type SimulateRule struct {
	Rule  string `json:"rule"`
	Match string `json:"match"`
	Line  int    `json:"line"`
	// Tier is the requests' tier ("" when the file has no tiers).
	Tier      string `json:"tier"`
	Unlimited bool   `json:"unlimited"`
	Requests  int64  `json:"requests"`
	Allowed   int64  `json:"allowed"`
	Denied    int64  `json:"denied"`
	// ShadowDenied are the requests a shadow limit would have denied (all served
	// unless an enforced limit denied them).
	ShadowDenied int64 `json:"shadow_denied"`
	Clients      int   `json:"clients"`
	// Limits are the rule's limits, enforced ones first, then shadow ones.
	Limits []SimulateRuleLimit `json:"limits"`
	// WellBehavedRefused and AbuseAdmitted are the who-paid figures against the
	// rule's enforced limits; absent for a rule without any.
	WellBehavedRefused *WhoPaid `json:"well_behaved_refused,omitempty"`
	AbuseAdmitted      *WhoPaid `json:"abuse_admitted,omitempty"`
}

// SimulateRuleLimit is one limit of a rule and what it decided.
type SimulateRuleLimit struct {
	Name      string  `json:"name"`
	Algorithm string  `json:"algorithm"`
	Limit     int64   `json:"limit"`
	WindowMs  float64 `json:"window_ms"`
	Burst     int64   `json:"burst"`
	Shadow    bool    `json:"shadow"`
	// Requests are the requests it checked (every request of the rule and tier).
	Requests int64 `json:"requests"`
	// Denied are the requests it denied (the one with the longest wait when
	// several did); ShadowDenied, for a shadow limit, those it would have denied.
	Denied       int64 `json:"denied"`
	ShadowDenied int64 `json:"shadow_denied"`
}

func (l SimulateRuleLimit) policy() string {
	s := fmt.Sprintf("%s %d/%s", l.Algorithm, l.Limit, algorithms.FormatWindow(time.Duration(l.WindowMs*float64(time.Millisecond))))
	if l.Burst != l.Limit && l.Burst != 0 {
		s += fmt.Sprintf(" b%d", l.Burst)
	}
	if l.Shadow {
		s += " (shadow)"
	}
	return s
}

// limitsRunRow is the policy file in the run's settings.
func limitsRunRow(l *SimulateLimits) [2]string {
	s := fmt.Sprintf("%s (sha256 %s…, identity %s): each rule's limits checked together, as serve does", Shown(l.File),
		l.SHA256[:min(12, len(l.SHA256))], Shown(l.Identity))
	if l.Unmatched > 0 || l.Unidentified > 0 {
		s += fmt.Sprintf("; %s matched no rule (not limited)", count(l.Unmatched))
		if l.Unidentified > 0 {
			s += fmt.Sprintf(", %s had no identity serve accepts (no API key, or not a valid one: 401 or 400)", count(l.Unidentified))
		}
	}
	return [2]string{"limits", s}
}

// limitsSections are the report's tables for a policy file.
func limitsSections(l *SimulateLimits) []hammerSection {
	rules := &grid{headers: []string{"rule", "tier", "match", "clients", "requests", "allowed", "denied", "shadow denials"},
		firstNumeric: 3}
	limits := &grid{headers: []string{"rule", "tier", "limit", "policy", "requests", "denied", "shadow denials"}, firstNumeric: 4}
	paid := &grid{headers: []string{"rule", "tier", "well-behaved refused", "their denials", "abuse admitted", "over L in their busiest W"},
		firstNumeric: 2}
	for _, r := range l.Rules {
		match := Shown(r.Match)
		if r.Unlimited {
			match += " (unlimited)"
		}
		tier := cmpOr(Shown(r.Tier), "-")
		rules.rows = append(rules.rows, []string{Shown(r.Rule), tier, match, count(int64(r.Clients)), count(r.Requests),
			count(r.Allowed), count(r.Denied), count(r.ShadowDenied)})
		for _, lim := range r.Limits {
			limits.rows = append(limits.rows, []string{Shown(r.Rule), tier, Shown(lim.Name), lim.policy(), count(lim.Requests),
				count(lim.Denied), count(lim.ShadowDenied)})
		}
		if r.WellBehavedRefused != nil && r.AbuseAdmitted != nil {
			paid.rows = append(paid.rows, []string{Shown(r.Rule), tier,
				plural(int(r.WellBehavedRefused.Clients), "client"), count(r.WellBehavedRefused.Requests),
				plural(int(r.AbuseAdmitted.Clients), "client"), count(r.AbuseAdmitted.Requests)})
		}
	}
	sections := []hammerSection{{title: "Rules by tier (virtual time; a request is admitted only if every enforced limit admits)", grid: rules}}
	if len(limits.rows) > 0 {
		sections = append(sections, hammerSection{title: "Limits: the denials of each (a denial consumes nothing from the others)", grid: limits})
	}
	if len(paid.rows) > 0 {
		sections = append(sections, hammerSection{title: "Who paid, per rule: clients within every limit over the whole span but refused, against clients over one that got more than its L in a window of it", grid: paid})
	}
	return sections
}
