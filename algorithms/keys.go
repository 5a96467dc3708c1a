package algorithms

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// The key scheme, in one place: everything ratelab writes to Redis is named here,
// and inspect and flush read names back with Keyspace.Parse.
//
//	<prefix>:rl:<algorithm>:<policy>:{<identity>}   limiter state
//	<prefix>:rl:<algorithm>:<policy>:<rule>:<limit>:{<identity>}
//	                                                one limit of a policy file's rule
//	<prefix>:product:{<id>}                         a cached product
//	<prefix>:lock:product:{<id>}                    the fill lock of a cached product
//	<prefix>:invalidate                             the invalidation channel (Pub/Sub, not a key)
//	<prefix>:health:{<node>}                        a node's health probe (short TTL)
//
// The braces are a Redis Cluster hash tag: every key of one identity (or one
// product and its lock) lives in one slot, so one script call never spans slots.

// Kind is what a key holds.
type Kind string

// The kinds of key ratelab writes.
const (
	KindLimiter Kind = "rl"
	KindProduct Kind = "product"
	KindLock    Kind = "lock"
	KindHealth  Kind = "health"
)

// DefaultPrefix is the prefix of every key unless --prefix says otherwise.
const DefaultPrefix = "ratelab"

// MaxPrefixLen bounds a key prefix.
const MaxPrefixLen = 64

// Errors from NewKeyspace and Parse.
var (
	// ErrInvalidPrefix means a prefix NewKeyspace refuses (NewRedis refuses a Keyspace without one).
	ErrInvalidPrefix = errors.New("invalid prefix")
	// ErrForeignKey means the key is not under this keyspace's prefix.
	ErrForeignKey = errors.New("not a ratelab key")
	// ErrUndecodable means the key is under the prefix but not of a form ratelab writes.
	ErrUndecodable = errors.New("cannot decode key")
)

// Keyspace names keys under one prefix.
type Keyspace struct {
	prefix string
}

// NewKeyspace checks prefix and returns its keyspace. An empty prefix, one made only
// of glob characters, or one with ':', braces, spaces or control characters is refused:
// flush deletes by prefix, and such a prefix would reach keys that are not ratelab's.
func NewKeyspace(prefix string) (Keyspace, error) {
	switch {
	case prefix == "":
		return Keyspace{}, fmt.Errorf("%w: the prefix is empty; use a name such as %q", ErrInvalidPrefix, DefaultPrefix)
	case len(prefix) > MaxPrefixLen:
		return Keyspace{}, fmt.Errorf("%w: %d characters; at most %d are allowed", ErrInvalidPrefix, len(prefix), MaxPrefixLen)
	case strings.Trim(prefix, `*?[]^\-`) == "":
		return Keyspace{}, fmt.Errorf("%w: %q is made of glob characters and would match other programs' keys", ErrInvalidPrefix, prefix)
	}
	for _, r := range prefix {
		if r <= ' ' || !unicode.IsPrint(r) || strings.ContainsRune(":{}", r) {
			return Keyspace{}, fmt.Errorf("%w: %q contains %q; use letters, digits, '-' or '_'", ErrInvalidPrefix, prefix, r)
		}
	}
	return Keyspace{prefix: prefix}, nil
}

// MustKeyspace is NewKeyspace for prefixes known to be valid (tests, constants); it panics on a bad one.
func MustKeyspace(prefix string) Keyspace {
	k, err := NewKeyspace(prefix)
	if err != nil {
		panic(err)
	}
	return k
}

// Prefix is the keyspace's prefix.
func (k Keyspace) Prefix() string { return k.prefix }

// Limiter names the state of one algorithm and policy for one normalised identity.
func (k Keyspace) Limiter(algorithm string, p Policy, identity string) string {
	return k.prefix + ":" + string(KindLimiter) + ":" + algorithm + ":" + p.String() + ":{" + identity + "}"
}

// RuleLimiter names the state of the limit called limit of the rule called rule
// (a policy file's), under one algorithm and policy, for one normalised identity.
// The algorithm and policy stay in the name, so a limit whose numbers change starts
// afresh, and one that does not keeps its state.
func (k Keyspace) RuleLimiter(algorithm string, p Policy, rule, limit, identity string) string {
	return k.prefix + ":" + string(KindLimiter) + ":" + algorithm + ":" + p.String() + ":" + rule + ":" + limit + ":{" + identity + "}"
}

// Product names a cached product.
func (k Keyspace) Product(id string) string {
	return k.prefix + ":" + string(KindProduct) + ":{" + id + "}"
}

// ProductLock names the fill lock of a cached product; it shares the product's slot.
func (k Keyspace) ProductLock(id string) string {
	return k.prefix + ":" + string(KindLock) + ":" + string(KindProduct) + ":{" + id + "}"
}

// Health names the key a node's health probe writes; node is a random hex token.
func (k Keyspace) Health(node string) string {
	return k.prefix + ":" + string(KindHealth) + ":{" + node + "}"
}

// Invalidation names the Pub/Sub channel on which product invalidations are published.
func (k Keyspace) Invalidation() string { return k.prefix + ":invalidate" }

// Match is a SCAN MATCH pattern for every key under the prefix, with any glob
// characters in the prefix escaped, so "ratelab" matches "ratelab:..." and never "ratelabx:...".
func (k Keyspace) Match() string { return EscapeGlob(k.prefix) + ":*" }

// MatchKind is a SCAN MATCH pattern for the keys of one kind; for limiter keys an
// algorithm (may be empty) narrows it further.
func (k Keyspace) MatchKind(kind Kind, algorithm string) string {
	p := EscapeGlob(k.prefix) + ":" + string(kind) + ":"
	if kind == KindLimiter && algorithm != "" {
		p += EscapeGlob(algorithm) + ":"
	}
	return p + "*"
}

// MatchIdentity is a SCAN MATCH pattern for every limiter key of one normalised identity.
func (k Keyspace) MatchIdentity(identity string) string {
	return EscapeGlob(k.prefix) + ":" + string(KindLimiter) + ":*{" + EscapeGlob(identity) + "}"
}

// EscapeGlob escapes the characters that Redis glob patterns treat specially.
func EscapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\^`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Key is a key name decoded by Keyspace.Parse.
type Key struct {
	Kind Kind `json:"kind"`
	// Algorithm, Policy and Identity are set for limiter keys.
	Algorithm string  `json:"algorithm,omitempty"`
	Policy    *Policy `json:"policy,omitempty"`
	Identity  string  `json:"identity,omitempty"`
	// Rule and Limit name the policy file's rule and limit of a limiter key written
	// by a combined check (MultiRedis); empty for a single limiter's key.
	Rule  string `json:"rule,omitempty"`
	Limit string `json:"limit,omitempty"`
	// ProductID is set for product and lock keys.
	ProductID string `json:"product_id,omitempty"`
}

// Parse decodes a key name written by this keyspace. A key outside the prefix wraps
// ErrForeignKey; one inside it that is not of a form ratelab writes wraps ErrUndecodable.
func (k Keyspace) Parse(key string) (Key, error) {
	rest, ok := strings.CutPrefix(key, k.prefix+":")
	if !ok {
		return Key{}, fmt.Errorf("%w: %q is not under the prefix %q", ErrForeignKey, truncate(key, 80), k.prefix+":")
	}
	undecodable := func(why string) (Key, error) {
		return Key{}, fmt.Errorf("%w %q: %s", ErrUndecodable, truncate(key, 80), why)
	}
	head, tag, ok := cutTag(rest)
	if !ok {
		return undecodable("it has no {…} hash tag at its end")
	}
	switch {
	case head == string(KindProduct)+":", head == string(KindLock)+":"+string(KindProduct)+":":
		if err := ProductIDProblem(tag); err != "" {
			return undecodable(fmt.Sprintf("%q is not a product id: %s", tag, err))
		}
		if head == string(KindProduct)+":" {
			return Key{Kind: KindProduct, ProductID: tag}, nil
		}
		return Key{Kind: KindLock, ProductID: tag}, nil
	case head == string(KindHealth)+":":
		if strings.Trim(tag, "0123456789abcdef") != "" {
			return undecodable(fmt.Sprintf("%q is not a probe's hex token", tag))
		}
		return Key{Kind: KindHealth}, nil
	case strings.HasPrefix(head, string(KindLimiter)+":"):
		fields := strings.Split(strings.TrimSuffix(head, ":"), ":")
		if (len(fields) != 3 && len(fields) != 5) || !strings.HasSuffix(head, ":") {
			return undecodable("a limiter key is rl:<algorithm>:<policy>:{<identity>} or rl:<algorithm>:<policy>:<rule>:<limit>:{<identity>}")
		}
		var rule, limit string
		if len(fields) == 5 {
			rule, limit = fields[3], fields[4]
			if CheckScope(rule) != nil || CheckLimitName(limit) != nil {
				return undecodable(fmt.Sprintf("%q and %q are not a rule's and a limit's names", rule, limit))
			}
		}
		if _, known := specs[fields[1]]; !known {
			return undecodable(fmt.Sprintf("%q is not an algorithm ratelab knows", fields[1]))
		}
		p, err := ParsePolicy(fields[2])
		if err != nil {
			return undecodable(err.Error())
		}
		if p.String() != fields[2] {
			return undecodable(fmt.Sprintf("the policy %q is not spelled as ratelab writes it (%q)", fields[2], p.String()))
		}
		id, err := NormalizeIdentity(tag)
		if err != nil || id != tag {
			return undecodable(fmt.Sprintf("%q is not a normalised identity", tag))
		}
		return Key{Kind: KindLimiter, Algorithm: fields[1], Policy: &p, Identity: tag, Rule: rule, Limit: limit}, nil
	}
	return undecodable("its kind is not rl, product, lock or health")
}

// MaxProductIDLen bounds a product id.
const MaxProductIDLen = 64

// ProductIDProblem says what keeps id from being a product id, or "" when it is one:
// 1 to MaxProductIDLen characters of [A-Za-z0-9_-]. Nothing else ever becomes part of
// a product's key name, so a key that holds anything else is not ratelab's.
func ProductIDProblem(id string) string {
	if id == "" {
		return "empty"
	}
	if len(id) > MaxProductIDLen {
		return fmt.Sprintf("%d characters; at most %d are allowed", len(id), MaxProductIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return fmt.Sprintf("it contains %q; use letters, digits, '_' or '-'", c)
		}
	}
	return ""
}

// cutTag splits "head{tag}" at its hash tag, which must end the string.
func cutTag(s string) (head, tag string, ok bool) {
	open := strings.IndexByte(s, '{')
	if open < 0 || !strings.HasSuffix(s, "}") || open+2 > len(s)-1 {
		return "", "", false
	}
	tag = s[open+1 : len(s)-1]
	if strings.ContainsAny(tag, "{}") {
		return "", "", false
	}
	return s[:open], tag, true
}
