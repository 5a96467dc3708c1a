package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	policyfile "github.com/ratelab/ratelab/internal/policy"
)

// Limits is what `ratelab limits check` says of a valid policy file.
type Limits struct {
	File     string              `json:"file"`
	Hash     string              `json:"hash"`
	Identity policyfile.Identity `json:"identity"`
	// TierHeader, Tiers and Keys describe the tiers (no key is ever written out).
	TierHeader  string       `json:"tier_header,omitempty"`
	DefaultTier string       `json:"default_tier,omitempty"`
	Tiers       []string     `json:"tiers,omitempty"`
	Keys        int          `json:"keys"`
	Rules       []LimitsRule `json:"rules"`
}

// LimitsRule is one rule, in words and in numbers.
type LimitsRule struct {
	Name      string             `json:"name"`
	Line      int                `json:"line"`
	Matches   string             `json:"matches"`
	Unlimited bool               `json:"unlimited,omitempty"`
	Limits    []policyfile.Limit `json:"limits,omitempty"`
}

// LimitsOf is the report of the valid policy p read from file.
func LimitsOf(file string, p *policyfile.Policy) Limits {
	l := Limits{File: file, Hash: p.Hash, Identity: p.Identity, Rules: []LimitsRule{}}
	if p.Tiers != nil {
		l.TierHeader, l.DefaultTier, l.Tiers, l.Keys = p.Tiers.Header, p.Tiers.Default, p.Tiers.Names(), p.Tiers.KeyCount()
	}
	for i := range p.Rules {
		r := &p.Rules[i]
		l.Rules = append(l.Rules, LimitsRule{Name: r.Name, Line: r.Line, Matches: r.Describe(), Unlimited: r.Unlimited, Limits: r.Limits})
	}
	return l
}

// WriteLimits renders l as a table (plain lines) or JSON.
func WriteLimits(w io.Writer, format string, l Limits) error {
	if format == FormatJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(l)
	}
	ew := &errWriter{w: w}
	ew.printf("%s is valid (sha256 %s)\n", Shown(l.File), l.Hash[:16])
	id := l.Identity.Kind
	switch l.Identity.Kind {
	case policyfile.IdentityHeader:
		id = "the " + l.Identity.Header + " header"
	case policyfile.IdentityIP:
		id = fmt.Sprintf("the client's IP (IPv6 by its /%d)", l.Identity.IPv6Prefix)
	case policyfile.IdentityAPIKey:
		id = "the API key (hashed)"
	}
	ew.printf("clients are identified by %s\n", id)
	if l.TierHeader != "" {
		ew.printf("tiers %s from the %s header (%s), default %s\n", strings.Join(l.Tiers, ", "), l.TierHeader, plural(l.Keys, "key"), l.DefaultTier)
	}
	ew.printf("rules, the first that matches decides; a request no rule matches is not limited:\n")
	for i, r := range l.Rules {
		ew.printf("  %d. %s (line %d, keys named %s)\n", i+1, r.Matches, r.Line, r.Name)
		if r.Unlimited {
			ew.printf("       unlimited\n")
		}
		for _, lim := range r.Limits {
			ew.printf("       %s\n", lim.Describe())
		}
	}
	return ew.err
}

// WriteProblems writes a policy file's problems, one a line, as FILE:LINE: reason.
func WriteProblems(w io.Writer, problems []policyfile.Problem) error {
	ew := &errWriter{w: w}
	for _, p := range problems {
		ew.printf("%s\n", Shown(p.String()))
	}
	return ew.err
}
