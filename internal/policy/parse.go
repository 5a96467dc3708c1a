package policy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ratelab/ratelab/algorithms"
)

// Problem is one thing wrong with a policy file, at its line.
type Problem struct {
	File string `json:"file"`
	Line int    `json:"line"`
	// Reason says what is wrong and what to write instead.
	Reason string `json:"reason"`
}

func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Reason)
	}
	return fmt.Sprintf("%s: %s", p.File, p.Reason)
}

// Error is every problem found in a policy file, in the order of their lines. It wraps ErrInvalid.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *Error) Unwrap() error { return ErrInvalid }

// maxProblems bounds the problems reported: after so many, the rest are noise.
const maxProblems = 20

// Load reads and checks the policy file at path; a keys_file is read relative to it.
func Load(path string) (*Policy, error) {
	data, err := readBounded(path, MaxFileBytes)
	if err != nil {
		return nil, &Error{Problems: []Problem{{File: path, Reason: err.Error()}}}
	}
	return Parse(path, data, func(name string) ([]byte, error) {
		if !filepath.IsAbs(name) {
			name = filepath.Join(filepath.Dir(path), name)
		}
		return readBounded(name, MaxKeysFileBytes)
	})
}

func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read it: %w", errors.Unwrap(err))
	}
	defer func() { _ = f.Close() }()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read it: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("it is larger than %d bytes", limit)
	}
	return data, nil
}

// Parse checks the policy file data, named name in errors; readFile reads a keys_file
// (nil refuses one). Every problem found comes back in one *Error, each at its line.
func Parse(name string, data []byte, readFile func(string) ([]byte, error)) (*Policy, error) {
	p := &parser{file: name, readFile: readFile}
	pol := p.parse(data)
	if len(p.problems) > 0 {
		sort.SliceStable(p.problems, func(i, j int) bool { return p.problems[i].Line < p.problems[j].Line })
		if len(p.problems) > maxProblems {
			p.problems = p.problems[:maxProblems]
		}
		return nil, &Error{Problems: p.problems}
	}
	return pol, nil
}

type parser struct {
	file     string
	readFile func(string) ([]byte, error)
	problems []Problem
	keysData []byte
}

func (p *parser) bad(n *yaml.Node, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.problems = append(p.problems, Problem{File: p.file, Line: line, Reason: fmt.Sprintf(format, args...)})
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (p *parser) parse(data []byte) *Policy {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := err.Error()
		line := 0
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = m[2]
		}
		p.problems = append(p.problems, Problem{File: p.file, Line: line, Reason: "not valid YAML: " + msg})
		return nil
	}
	if len(doc.Content) == 0 {
		p.bad(nil, "the file is empty; it needs at least identity and rules (see docs/policies.md)")
		return nil
	}
	root := deref(doc.Content[0])
	fields := p.mapping(root, "the file", "identity", "ipv6_prefix", "tiers", "rules")
	if fields == nil {
		return nil
	}
	pol := &Policy{Identity: Identity{Kind: IdentityIP, IPv6Prefix: algorithms.DefaultIPv6Prefix}}
	if n := fields["identity"]; n != nil {
		pol.Identity = p.identity(n, pol.Identity)
	}
	if n := fields["ipv6_prefix"]; n != nil {
		if bits, ok := p.integer(n, "ipv6_prefix"); ok {
			if err := algorithms.CheckIPv6Prefix(int(bits)); err != nil {
				p.bad(n, "ipv6_prefix: %v", err)
			}
			pol.Identity.IPv6Prefix = int(bits)
		}
	}
	if n := fields["tiers"]; n != nil {
		pol.Tiers = p.tiers(n)
	}
	if n := fields["rules"]; n != nil {
		pol.Rules = p.rules(n, pol.Tiers)
	} else {
		p.bad(root, "there are no rules; add rules: with at least one rule")
	}
	pol.Hash = hashOf(data, p.keysData)
	return pol
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// mapping reads a mapping node's fields, refusing unknown and repeated ones.
func (p *parser) mapping(n *yaml.Node, what string, known ...string) map[string]*yaml.Node {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		p.bad(n, "%s must be a mapping of %s", what, strings.Join(known, ", "))
		return nil
	}
	out := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], deref(n.Content[i+1])
		switch {
		case !contains(known, k.Value):
			p.bad(k, "%s has no field %q; its fields are %s", what, k.Value, strings.Join(known, ", "))
		case out[k.Value] != nil:
			p.bad(k, "%s: %s is given twice", what, k.Value)
		default:
			out[k.Value] = v
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (p *parser) scalar(n *yaml.Node, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.bad(n, "%s must be a single value", what)
		return "", false
	}
	return n.Value, true
}

func (p *parser) integer(n *yaml.Node, what string) (int64, bool) {
	s, ok := p.scalar(n, what)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		p.bad(n, "%s is %q; it must be a whole number", what, s)
		return 0, false
	}
	return v, true
}

func (p *parser) boolean(n *yaml.Node, what string) bool {
	s, ok := p.scalar(n, what)
	if !ok {
		return false
	}
	switch s {
	case "true":
		return true
	case "false":
		return false
	}
	p.bad(n, "%s is %q; write true or false", what, s)
	return false
}

var headerName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$")

func (p *parser) header(n *yaml.Node, what, name string) string {
	if !headerName.MatchString(name) {
		p.bad(n, "%s: %q is not a header name", what, name)
		return ""
	}
	return http.CanonicalHeaderKey(name)
}

func (p *parser) identity(n *yaml.Node, id Identity) Identity {
	s, ok := p.scalar(n, "identity")
	if !ok {
		return id
	}
	switch {
	case s == IdentityIP, s == IdentityAPIKey:
		id.Kind = s
	case strings.HasPrefix(s, IdentityHeader+":"):
		id.Kind = IdentityHeader
		id.Header = p.header(n, "identity", strings.TrimSpace(strings.TrimPrefix(s, IdentityHeader+":")))
	default:
		p.bad(n, "identity is %q; write ip, api-key, or header:NAME (e.g. header:X-Client-Id)", s)
	}
	return id
}

var tierName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$`)

func (p *parser) tierName(n *yaml.Node, what, s string) bool {
	if !tierName.MatchString(s) {
		p.bad(n, "%s: tier %q: use 1 to 32 letters, digits, '_' or '-'", what, s)
		return false
	}
	return true
}

func (p *parser) tiers(n *yaml.Node) *Tiers {
	fields := p.mapping(n, "tiers", "header", "keys", "keys_file", "default")
	if fields == nil {
		return nil
	}
	t := &Tiers{Header: "X-Api-Key", keys: map[string]string{}, names: map[string]bool{}}
	if h := fields["header"]; h != nil {
		if s, ok := p.scalar(h, "tiers.header"); ok {
			t.Header = p.header(h, "tiers.header", s)
		}
	}
	if d := fields["default"]; d != nil {
		if s, ok := p.scalar(d, "tiers.default"); ok && p.tierName(d, "tiers.default", s) {
			t.Default = s
			t.names[s] = true
		}
	} else {
		p.bad(n, "tiers has no default; add default: TIER, the tier of a request without a known key")
	}
	if k := fields["keys"]; k != nil {
		if k.Kind != yaml.MappingNode {
			p.bad(k, "tiers.keys must be a mapping of key: tier")
		} else {
			for i := 0; i+1 < len(k.Content); i += 2 {
				key, tier := k.Content[i], deref(k.Content[i+1])
				// The key itself is never repeated in a message: it is a secret.
				if s, ok := p.scalar(tier, "a key's tier"); ok && p.tierName(tier, "tiers.keys", s) {
					p.addKey(t, key, key.Value, s, "tiers.keys")
				}
			}
		}
	}
	if f := fields["keys_file"]; f != nil {
		if s, ok := p.scalar(f, "tiers.keys_file"); ok {
			p.keysFile(t, f, s)
		}
	}
	return t
}

func (p *parser) addKey(t *Tiers, n *yaml.Node, key, tier, where string) {
	switch {
	case key == "":
		p.bad(n, "%s: a key is empty", where)
	case len(key) > MaxKeyLen:
		p.bad(n, "%s: a key has %d characters; at most %d are allowed", where, len(key), MaxKeyLen)
	case t.keys[key] != "" && t.keys[key] != tier:
		p.bad(n, "%s: a key is given two tiers, %s and %s", where, t.keys[key], tier)
	default:
		t.keys[key] = tier
		t.names[tier] = true
	}
}

func (p *parser) keysFile(t *Tiers, n *yaml.Node, name string) {
	if p.readFile == nil {
		p.bad(n, "tiers.keys_file %q: this file cannot refer to another", name)
		return
	}
	data, err := p.readFile(name)
	if err != nil {
		p.bad(n, "tiers.keys_file %q: %v", name, err)
		return
	}
	p.keysData = data
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<16)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		at := &yaml.Node{Line: n.Line}
		fields := strings.Fields(text)
		where := fmt.Sprintf("tiers.keys_file %s line %d", name, line)
		if len(fields) != 2 {
			p.bad(at, "%s: %d fields; write one \"key tier\" a line", where, len(fields))
			continue
		}
		if p.tierName(at, where, fields[1]) {
			p.addKey(t, at, fields[0], fields[1], where)
		}
	}
	if err := sc.Err(); err != nil {
		p.bad(n, "tiers.keys_file %q: %v", name, err)
	}
}

var methods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions}

func (p *parser) rules(n *yaml.Node, tiers *Tiers) []Rule {
	if n.Kind != yaml.SequenceNode {
		p.bad(n, "rules must be a list of rules (each line starting with -)")
		return nil
	}
	if len(n.Content) == 0 {
		p.bad(n, "rules is empty; add at least one rule")
	}
	if len(n.Content) > MaxRules {
		p.bad(n, "%d rules; at most %d are allowed", len(n.Content), MaxRules)
		return nil
	}
	var rules []Rule
	names := map[string]int{}
	for i, rn := range n.Content {
		r, ok := p.rule(deref(rn), i+1, tiers)
		if !ok {
			continue
		}
		if line, dup := names[r.Name]; dup {
			p.bad(rn, "rule %d is named %q, as the rule at line %d is: their limits would share keys; give one a name: of its own", i+1, r.Name, line)
			continue
		}
		names[r.Name] = r.Line
		rules = append(rules, r)
	}
	return rules
}

func (p *parser) rule(n *yaml.Node, index int, tiers *Tiers) (Rule, bool) {
	what := fmt.Sprintf("rule %d", index)
	fields := p.mapping(n, what, "name", "match", "shadow", "unlimited", "limits")
	if fields == nil {
		return Rule{}, false
	}
	before := len(p.problems)
	r := Rule{Line: n.Line}
	if m := fields["match"]; m != nil {
		mf := p.mapping(m, what+" match", "method", "route", "tier")
		if v := mf["method"]; v != nil {
			if s, ok := p.scalar(v, what+" method"); ok {
				if r.Method = strings.ToUpper(s); !contains(methods, r.Method) {
					p.bad(v, "%s: method %q; choose one of %s", what, s, strings.Join(methods, ", "))
				}
			}
		}
		if v := mf["route"]; v != nil {
			if s, ok := p.scalar(v, what+" route"); ok {
				route, err := parseRoute(s)
				if err != nil {
					p.bad(v, "%s: %v", what, err)
				}
				r.Route, r.route = s, route
			}
		}
		if v := mf["tier"]; v != nil {
			if s, ok := p.scalar(v, what+" tier"); ok {
				switch {
				case tiers == nil:
					p.bad(v, "%s matches tier %q, but the file has no tiers: section", what, s)
				case !tiers.names[s]:
					p.bad(v, "%s matches tier %q, which no key has and which is not the default; the tiers are %s", what, s, strings.Join(tiers.Names(), ", "))
				}
				r.Tier = s
			}
		}
	}
	r.Name = ruleName(r.Method, r.Route, r.Tier)
	if v := fields["name"]; v != nil {
		if s, ok := p.scalar(v, what+" name"); ok {
			if algorithms.CheckScope(s) != nil {
				p.bad(v, "%s: name %q: use 1 to 128 letters, digits or any of _.@/=+-, starting with a letter or digit", what, s)
			}
			r.Name = s
		}
	}
	shadow := false
	if v := fields["shadow"]; v != nil {
		shadow = p.boolean(v, what+" shadow")
	}
	if v := fields["unlimited"]; v != nil {
		r.Unlimited = p.boolean(v, what+" unlimited")
	}
	lims := fields["limits"]
	if lims != nil && lims.Kind == yaml.ScalarNode && lims.Value == "unlimited" {
		r.Unlimited, lims = true, nil
	}
	switch {
	case r.Unlimited && lims != nil:
		p.bad(lims, "%s is unlimited and has limits; keep one of them", what)
	case r.Unlimited && shadow:
		p.bad(fields["shadow"], "%s is unlimited: there is nothing to shadow", what)
	case !r.Unlimited && lims == nil:
		p.bad(n, "%s has no limits; add limits: (a list), or write limits: unlimited", what)
	case lims != nil:
		r.Limits = p.limits(lims, what, shadow)
	}
	return r, len(p.problems) == before
}

func (p *parser) limits(n *yaml.Node, rule string, shadow bool) []Limit {
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		p.bad(n, "%s: limits must be a list of limits, or unlimited", rule)
		return nil
	}
	if len(n.Content) > algorithms.MaxLimitsPerCheck {
		p.bad(n, "%s: %d limits; at most %d are checked at once", rule, len(n.Content), algorithms.MaxLimitsPerCheck)
		return nil
	}
	var out []Limit
	seen := map[string]bool{}
	for _, ln := range n.Content {
		ln = deref(ln)
		fields := p.mapping(ln, rule+" limit", "name", "algorithm", "limit", "window", "burst", "shadow")
		if fields == nil {
			continue
		}
		l := Limit{Line: ln.Line, Shadow: shadow}
		ok := true
		need := func(field string) *yaml.Node {
			v := fields[field]
			if v == nil {
				p.bad(ln, "%s: a limit has no %s", rule, field)
				ok = false
			}
			return v
		}
		if v := need("name"); v != nil {
			if s, good := p.scalar(v, "a limit's name"); good {
				l.Name = s
				if err := algorithms.CheckLimitName(s); err != nil {
					p.bad(v, "%s: limit name %q: use 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit", rule, s)
					ok = false
				} else if seen[s] {
					p.bad(v, "%s: two limits are named %q", rule, s)
					ok = false
				}
				seen[s] = true
			}
		}
		what := rule + " limit " + l.Name
		if v := need("algorithm"); v != nil {
			if s, good := p.scalar(v, what+" algorithm"); good {
				if err := algorithms.Lookup(s); err != nil {
					p.bad(v, "%s: algorithm %q; choose one of %s", what, s, strings.Join(algorithms.Names(), ", "))
					ok = false
				}
				l.Algorithm = s
			}
		}
		if v := need("limit"); v != nil {
			l.Policy.Limit, ok = p.integerOK(v, what+" limit", ok)
		}
		if v := need("window"); v != nil {
			if s, good := p.scalar(v, what+" window"); good {
				w, err := time.ParseDuration(s)
				if err != nil {
					p.bad(v, "%s: window %q is not a duration; write e.g. 1s, 1m, 1h, 250ms", what, s)
					ok = false
				}
				l.Policy.Window = w
			}
		}
		if v := fields["burst"]; v != nil {
			l.Policy.Burst, ok = p.integerOK(v, what+" burst", ok)
		}
		if v := fields["shadow"]; v != nil {
			l.Shadow = p.boolean(v, what+" shadow") || shadow
		}
		if !ok {
			continue
		}
		if err := l.Policy.Validate(); err != nil {
			p.bad(ln, "%s: %s", what, strings.TrimPrefix(err.Error(), algorithms.ErrInvalidPolicy.Error()+": "))
			continue
		}
		if l.Policy.Burst == l.Policy.Limit {
			l.Policy.Burst = 0
		}
		out = append(out, l)
	}
	return out
}

func (p *parser) integerOK(n *yaml.Node, what string, ok bool) (int64, bool) {
	v, good := p.integer(n, what)
	return v, ok && good
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
