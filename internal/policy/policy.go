// Package policy reads a policy file: who a client is, which tier it belongs to, and
// which limits apply to a request by its method, route and tier. It is pure: it
// parses, validates and matches, and the Product API builds the limiters.
//
// The schema, with every field (docs/policies.md has it in full):
//
//	identity: ip                # or api-key, or header:X-Client-Id
//	ipv6_prefix: 64             # IPv6 clients grouped by this network (48..128)
//	tiers:
//	  header: X-API-Key         # where the tier comes from
//	  keys:                     # key -> tier
//	    key-pro-1: pro
//	  keys_file: keys.txt       # and/or a file of "key tier" lines (relative to this file)
//	  default: free             # the tier of an absent or unknown key
//	rules:                      # tried in order: the first that matches decides
//	  - name: products-free     # optional; names the rule's keys in Redis
//	    match: {method: GET, route: "/products/{id}", tier: free}
//	    shadow: false           # true: decide and count, never deny
//	    limits:                 # all must admit, in one atomic check; or "unlimited"
//	      - {name: per-second, algorithm: token-bucket, limit: 10, window: 1s, burst: 20, shadow: false}
package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"

	"github.com/ratelab/ratelab/algorithms"
)

// The kinds of client identity.
const (
	IdentityIP     = "ip"
	IdentityAPIKey = "api-key"
	IdentityHeader = "header"
)

// Bounds on a policy file.
const (
	MaxFileBytes     = 1 << 20
	MaxKeysFileBytes = 64 << 20
	MaxRules         = 1000
	MaxKeyLen        = 256
)

// ErrInvalid is wrapped by every error that says a policy file is not usable.
var ErrInvalid = errors.New("invalid policy file")

// Policy is a parsed, valid policy file.
type Policy struct {
	// Identity says who a client is.
	Identity Identity `json:"identity"`
	// Tiers says which tier a request belongs to; nil when the file has none.
	Tiers *Tiers `json:"tiers,omitempty"`
	// Rules are tried in order; the first that matches decides.
	Rules []Rule `json:"rules"`
	// Hash is the SHA-256 of the file and of its keys file, hex: which file is loaded.
	Hash string `json:"hash"`
}

// Identity says what identifies a client to the limiters.
type Identity struct {
	// Kind is IdentityIP, IdentityAPIKey or IdentityHeader.
	Kind string `json:"kind"`
	// Header is the header of IdentityHeader.
	Header string `json:"header,omitempty"`
	// IPv6Prefix groups IPv6 clients by their network of this many bits (IdentityIP).
	IPv6Prefix int `json:"ipv6_prefix"`
}

// Tiers maps the value of a header to a tier.
type Tiers struct {
	// Header carries the key whose tier is looked up.
	Header string `json:"header"`
	// Default is the tier of a request whose key is absent or unknown.
	Default string `json:"default"`
	// keys maps a key to its tier; never logged, never written out.
	keys map[string]string
	// names are every tier a key or the default gives.
	names map[string]bool
}

// Of is the tier of a request whose tier header holds value ("" when absent).
func (t *Tiers) Of(value string) string {
	if tier, ok := t.keys[value]; ok && value != "" {
		return tier
	}
	return t.Default
}

// Names are the tiers, sorted.
func (t *Tiers) Names() []string { return sortedKeys(t.names) }

// KeysOf are the keys that give tier, sorted: what a load generator sends to be
// taken for a client of that tier. The keys stay out of every log and report.
func (t *Tiers) KeysOf(tier string) []string {
	var out []string
	for k, v := range t.keys {
		if v == tier {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// KeyCount is how many keys have a tier.
func (t *Tiers) KeyCount() int { return len(t.keys) }

// Rule is one rule: what it matches and what it enforces.
type Rule struct {
	// Name names the rule's keys in Redis (algorithms.CheckScope): the file's name,
	// or one made from the match, e.g. "GET/products/id@free".
	Name string `json:"name"`
	// Method, Route and Tier are what the rule matches; empty matches anything.
	Method string `json:"method,omitempty"`
	Route  string `json:"route,omitempty"`
	Tier   string `json:"tier,omitempty"`
	// Unlimited says the rule admits everything it matches, unchecked.
	Unlimited bool `json:"unlimited,omitempty"`
	// Limits must all admit a request; shadow ones never deny.
	Limits []Limit `json:"limits,omitempty"`
	// Line is the rule's line in the file.
	Line int `json:"line"`

	route []string
}

// Limit is one limit of a rule.
type Limit struct {
	algorithms.NamedLimit
	// Shadow limits decide and count but never deny (the rule's shadow makes every
	// limit of it shadow).
	Shadow bool `json:"shadow,omitempty"`
	// Line is the limit's line in the file.
	Line int `json:"line"`
}

// Describe is the limit in words: "per-second: token-bucket 10/1s burst 20 (shadow)".
func (l Limit) Describe() string {
	s := l.Name + ": " + l.Algorithm + " " + l.Policy.Describe()
	if l.Shadow {
		s += " (shadow)"
	}
	return s
}

// Enforced are the limits that deny, in order.
func (r *Rule) Enforced() []algorithms.NamedLimit { return r.limits(false) }

// Shadowed are the limits that only count, in order.
func (r *Rule) Shadowed() []algorithms.NamedLimit { return r.limits(true) }

func (r *Rule) limits(shadow bool) []algorithms.NamedLimit {
	var out []algorithms.NamedLimit
	for _, l := range r.Limits {
		if l.Shadow == shadow {
			out = append(out, l.NamedLimit)
		}
	}
	return out
}

// Describe is what the rule matches, in words: "GET /products/{id} tier free".
func (r *Rule) Describe() string {
	var parts []string
	if r.Method != "" {
		parts = append(parts, r.Method)
	} else {
		parts = append(parts, "any method")
	}
	if r.Route != "" {
		parts = append(parts, r.Route)
	} else {
		parts = append(parts, "any route")
	}
	if r.Tier != "" {
		parts = append(parts, "tier "+r.Tier)
	}
	return strings.Join(parts, " ")
}

// Matches reports whether the rule applies to a request of method to path by a client of tier.
func (r *Rule) Matches(method, path, tier string) bool {
	if r.Method != "" && r.Method != method {
		return false
	}
	if r.Tier != "" && r.Tier != tier {
		return false
	}
	return r.route == nil || matchRoute(r.route, path)
}

// Match is the first rule that applies to a request, or nil when none does (the
// request is not limited).
func (p *Policy) Match(method, path, tier string) *Rule {
	if i := p.MatchIndex(method, path, tier); i >= 0 {
		return &p.Rules[i]
	}
	return nil
}

// MatchIndex is the index in Rules of the first rule that applies, or -1.
func (p *Policy) MatchIndex(method, path, tier string) int {
	for i := range p.Rules {
		if p.Rules[i].Matches(method, path, tier) {
			return i
		}
	}
	return -1
}

// TierOf is the tier of a request with header h: "" without tiers.
func (p *Policy) TierOf(h http.Header) string {
	if p.Tiers == nil {
		return ""
	}
	return p.Tiers.Of(h.Get(p.Tiers.Header))
}

// matchRoute matches a path against a pattern's segments: a literal matches itself,
// {name} one non-empty segment, and a final * the rest of the path (one segment or more).
func matchRoute(pattern []string, path string) bool {
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	for i, p := range pattern {
		if p == "*" {
			return i < len(segs) && (len(segs) > i+1 || segs[i] != "")
		}
		if i >= len(segs) {
			return false
		}
		if isParam(p) {
			if segs[i] == "" {
				return false
			}
			continue
		}
		if p != segs[i] {
			return false
		}
	}
	return len(segs) == len(pattern)
}

func isParam(seg string) bool {
	return len(seg) > 2 && seg[0] == '{' && seg[len(seg)-1] == '}'
}

var paramName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// parseRoute checks a route pattern and splits it into segments.
func parseRoute(route string) ([]string, error) {
	if !strings.HasPrefix(route, "/") {
		return nil, fmt.Errorf("route %q must start with /", route)
	}
	segs := strings.Split(strings.TrimPrefix(route, "/"), "/")
	for i, s := range segs {
		switch {
		case s == "*":
			if i != len(segs)-1 {
				return nil, fmt.Errorf("route %q: * may only end a route", route)
			}
		case isParam(s):
			if !paramName.MatchString(s[1 : len(s)-1]) {
				return nil, fmt.Errorf("route %q: %s is not a parameter; write {name} with letters, digits or _", route, s)
			}
		case strings.ContainsAny(s, "{}*?#%"):
			return nil, fmt.Errorf("route %q: segment %q: use literal text, {name} for one segment, or * at the end", route, s)
		case s == "" && i != len(segs)-1:
			return nil, fmt.Errorf("route %q has an empty segment (//)", route)
		}
	}
	return segs, nil
}

// ruleName makes a rule's name from its match: "GET/products/id@free", "any/login", "PUT".
func ruleName(method, route, tier string) string {
	var b strings.Builder
	if method == "" {
		method = "any"
	}
	b.WriteString(method)
	for _, s := range strings.Split(strings.TrimPrefix(route, "/"), "/") {
		if route == "" {
			break
		}
		switch {
		case s == "*":
			s = "all"
		case isParam(s):
			s = s[1 : len(s)-1]
		}
		b.WriteString("/" + s)
	}
	if tier != "" {
		b.WriteString("@" + tier)
	}
	return strings.Map(func(r rune) rune {
		if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_.@/=+-", r)) {
			return r
		}
		return '_'
	}, b.String())
}

// hashOf is the hex SHA-256 of the file's bytes and then its keys file's.
func hashOf(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
	}
	return hex.EncodeToString(h.Sum(nil))
}
