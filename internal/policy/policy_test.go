package policy_test

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/policy"
)

// TestIssueExample loads the file of the contract as written and checks what it says.
func TestIssueExample(t *testing.T) {
	t.Parallel()
	p, err := policy.Load("testdata/issue.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if p.Identity.Kind != policy.IdentityIP || p.Identity.IPv6Prefix != algorithms.DefaultIPv6Prefix {
		t.Fatalf("identity %+v", p.Identity)
	}
	if p.Tiers == nil || p.Tiers.Header != "X-Api-Key" || p.Tiers.Default != "free" || p.Tiers.KeyCount() != 1 {
		t.Fatalf("tiers %+v", p.Tiers)
	}
	if len(p.Rules) != 3 || len(p.Hash) != 64 {
		t.Fatalf("%d rules, hash %q", len(p.Rules), p.Hash)
	}
	free := p.Rules[0]
	want := []policy.Limit{
		{NamedLimit: algorithms.NamedLimit{Name: "per-second", Algorithm: algorithms.TokenBucket,
			Policy: algorithms.Policy{Limit: 10, Window: time.Second, Burst: 20}}, Line: 10},
		{NamedLimit: algorithms.NamedLimit{Name: "per-hour", Algorithm: algorithms.SlidingLog,
			Policy: algorithms.Policy{Limit: 50, Window: time.Hour}}, Line: 11},
	}
	if free.Name != "GET/products/id@free" || free.Line != 8 || len(free.Limits) != 2 || free.Limits[0] != want[0] || free.Limits[1] != want[1] {
		t.Fatalf("rule 1: %+v", free)
	}
	put := p.Rules[2]
	if put.Name != "PUT" || !put.Limits[0].Shadow || len(put.Enforced()) != 0 || len(put.Shadowed()) != 1 {
		t.Fatalf("rule 3: %+v", put)
	}
	h := http.Header{}
	if tier := p.TierOf(h); tier != "free" {
		t.Fatalf("no key: tier %q", tier)
	}
	h.Set("X-API-Key", "key-pro-1")
	if tier := p.TierOf(h); tier != "pro" {
		t.Fatalf("key-pro-1: tier %q", tier)
	}
	h.Set("X-API-Key", "key-unknown")
	if tier := p.TierOf(h); tier != "free" {
		t.Fatalf("unknown key: tier %q", tier)
	}
	for _, c := range []struct {
		method, path, tier string
		rule               string
	}{
		{"GET", "/products/p-1", "free", "GET/products/id@free"},
		{"GET", "/products/p-1", "pro", "GET/products/id@pro"},
		{"PUT", "/products/p-1", "pro", "PUT"},
		{"PUT", "/anything", "free", "PUT"},
		{"GET", "/products/p-1/more", "free", ""},
		{"GET", "/products/", "free", ""},
		{"GET", "/healthz", "free", ""},
	} {
		got := ""
		if r := p.Match(c.method, c.path, c.tier); r != nil {
			got = r.Name
		}
		if got != c.rule {
			t.Errorf("%s %s tier %s: rule %q, want %q", c.method, c.path, c.tier, got, c.rule)
		}
	}
}

// TestFirstMatchWins: rules are tried in order, so a general rule before a specific
// one hides it; the specific one must come first.
func TestFirstMatchWins(t *testing.T) {
	t.Parallel()
	file := `
rules:
  - name: login
    match: {method: POST, route: /login}
    limits: [{name: per-minute, algorithm: sliding-log, limit: 5, window: 1m}]
  - name: products
    match: {route: "/products/*"}
    limits: [{name: per-second, algorithm: gcra, limit: 10, window: 1s}]
  - name: rest
    limits: unlimited
`
	p, err := policy.Parse("f.yaml", []byte(file), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ method, path, rule string }{
		{"POST", "/login", "login"}, {"GET", "/login", "rest"},
		{"PUT", "/products/p-1", "products"}, {"GET", "/products/a/b", "products"},
		{"GET", "/products", "rest"}, {"GET", "/", "rest"},
	} {
		if r := p.Match(c.method, c.path, ""); r == nil || r.Name != c.rule {
			t.Errorf("%s %s: %+v, want rule %s", c.method, c.path, r, c.rule)
		}
	}
	if r := p.Match("GET", "/", ""); !r.Unlimited {
		t.Errorf("rest is not unlimited: %+v", r)
	}
}

func TestKeysFile(t *testing.T) {
	t.Parallel()
	file := `
identity: header:X-Client-Id
tiers: {header: X-Key, keys_file: keys.txt, keys: {key-pro-1: pro}, default: free}
rules:
  - match: {tier: internal}
    limits: unlimited
  - match: {tier: pro}
    limits: [{name: s, algorithm: gcra, limit: 100, window: 1s}]
  - limits: [{name: s, algorithm: gcra, limit: 10, window: 1s}]
`
	p, err := policy.Parse("f.yaml", []byte(file), func(name string) ([]byte, error) {
		return os.ReadFile(filepath.Join("testdata", name))
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.Identity.Kind != policy.IdentityHeader || p.Identity.Header != "X-Client-Id" {
		t.Fatalf("identity %+v", p.Identity)
	}
	if got := strings.Join(p.Tiers.Names(), ","); got != "free,internal,pro" || p.Tiers.KeyCount() != 3 {
		t.Fatalf("tiers %s, %d keys", got, p.Tiers.KeyCount())
	}
	for key, tier := range map[string]string{"key-pro-1": "pro", "key-pro-2": "pro", "key-int-1": "internal", "": "free", "nope": "free"} {
		if got := p.Tiers.Of(key); got != tier {
			t.Errorf("key %q: tier %q, want %q", key, got, tier)
		}
	}
}

// TestBadFiles: every bad file is refused with the line of its first problem and a
// reason that says what to write; none leaks a key.
func TestBadFiles(t *testing.T) {
	t.Parallel()
	const rule = "rules:\n  - limits: [{name: s, algorithm: gcra, limit: 10, window: 1s}]\n"
	for _, c := range []struct {
		name, file string
		line       int
		reason     string
	}{
		{"empty", "", 0, "the file is empty"},
		{"yaml tab", "identity: ip\nrules:\n\t- limits: unlimited\n", 3, "not valid YAML: found character that cannot start any token"},
		{"not a mapping", "- a\n- b\n", 1, "the file must be a mapping"},
		{"unknown field", "identty: ip\n" + rule, 1, `no field "identty"`},
		{"identity", "identity: cookie\n" + rule, 1, "write ip, api-key, or header:NAME"},
		{"header name", "identity: \"header:X Y\"\n" + rule, 1, "is not a header name"},
		{"ipv6 prefix", "ipv6_prefix: 12\n" + rule, 1, "choose 48 to 128"},
		{"no rules", "identity: ip\n", 1, "there are no rules"},
		{"rules not a list", "rules: {a: b}\n", 1, "rules must be a list"},
		{"no limits", "rules:\n  - match: {method: GET}\n", 2, "has no limits"},
		{"bad method", "rules:\n  - match: {method: FETCH}\n    limits: unlimited\n", 2, `method "FETCH"`},
		{"bad route", "rules:\n  - match: {route: products}\n    limits: unlimited\n", 2, "must start with /"},
		{"star inside", "rules:\n  - match: {route: /a/*/b}\n    limits: unlimited\n", 2, "* may only end a route"},
		{"bad param", "rules:\n  - match: {route: \"/a/{1x}\"}\n    limits: unlimited\n", 2, "is not a parameter"},
		{"tier without tiers", "rules:\n  - match: {tier: pro}\n    limits: unlimited\n", 2, "the file has no tiers"},
		{"unknown tier", "tiers: {default: free}\nrules:\n  - match: {tier: gold}\n    limits: unlimited\n", 3, `tier "gold", which no key has`},
		{"no default", "tiers: {keys: {k: pro}}\n" + rule, 1, "tiers has no default"},
		{"bad tier name", "tiers: {default: \"fr ee\"}\n" + rule, 1, "use 1 to 32 letters"},
		{"key two tiers", "tiers:\n  default: free\n  keys:\n    secret-key-1: pro\n    secret-key-1: gold\n" + rule, 5, "a key is given two tiers"},
		{"keys file refused", "tiers: {default: free, keys_file: k.txt}\n" + rule, 1, "cannot refer to another"},
		{"unknown algorithm", "rules:\n  - limits:\n      - {name: s, algorithm: token, limit: 10, window: 1s}\n", 3, `algorithm "token"; choose one of`},
		{"missing window", "rules:\n  - limits:\n      - {name: s, algorithm: gcra, limit: 10}\n", 3, "a limit has no window"},
		{"bad window", "rules:\n  - limits:\n      - {name: s, algorithm: gcra, limit: 10, window: 1 hour}\n", 3, "is not a duration"},
		{"zero limit", "rules:\n  - limits:\n      - {name: s, algorithm: gcra, limit: 0, window: 1s}\n", 3, "limit is 0; it must be at least 1"},
		{"limit not a number", "rules:\n  - limits:\n      - {name: s, algorithm: gcra, limit: ten, window: 1s}\n", 3, "must be a whole number"},
		{"window too long", "rules:\n  - limits:\n      - {name: s, algorithm: gcra, limit: 1, window: 48h}\n", 3, "must be at most 24h"},
		{"two limits one name", "rules:\n  - limits:\n      - {name: s, algorithm: gcra, limit: 1, window: 1s}\n      - {name: s, algorithm: gcra, limit: 9, window: 1h}\n", 4, `two limits are named "s"`},
		{"bad limit name", "rules:\n  - limits:\n      - {name: \"a:b\", algorithm: gcra, limit: 1, window: 1s}\n", 3, "limit name \"a:b\""},
		{"unlimited with limits", "rules:\n  - unlimited: true\n    limits: [{name: s, algorithm: gcra, limit: 1, window: 1s}]\n", 3, "is unlimited and has limits"},
		{"shadow unlimited", "rules:\n  - shadow: true\n    limits: unlimited\n", 2, "nothing to shadow"},
		{"shadow not bool", "rules:\n  - shadow: yes please\n    limits: unlimited\n", 2, "write true or false"},
		{"same name", rule + "  - limits: [{name: t, algorithm: gcra, limit: 1, window: 1s}]\n", 3, "their limits would share keys"},
		{"bad rule name", "rules:\n  - name: \"a{b}\"\n    limits: unlimited\n", 2, `name "a{b}"`},
		{"field twice", "identity: ip\nidentity: api-key\n" + rule, 2, "identity is given twice"},
		{"unknown limit field", "rules:\n  - limits:\n      - {name: s, algorithm: gcra, limit: 1, window: 1s, brust: 3}\n", 3, `no field "brust"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := policy.Parse("f.yaml", []byte(c.file), nil)
			var perr *policy.Error
			if !errors.As(err, &perr) || !errors.Is(err, policy.ErrInvalid) {
				t.Fatalf("Parse accepted the file or failed otherwise: %v", err)
			}
			first := perr.Problems[0]
			if first.Line != c.line || !strings.Contains(first.Reason, c.reason) {
				t.Fatalf("first problem %q (line %d); want line %d, %q", first, first.Line, c.line, c.reason)
			}
			if strings.Contains(err.Error(), "secret-key-1") {
				t.Fatalf("the error shows a key: %v", err)
			}
			if want := "f.yaml:"; !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("the error %q does not start with the file's name", err)
			}
		})
	}
}

// TestKeysFileProblems: a bad keys file line is reported with its own line number,
// and without the key.
func TestKeysFileProblems(t *testing.T) {
	t.Parallel()
	keys := "k-1 pro\nsecret-key-2\nk-3 pro extra\nsecret-key-1 pro\nsecret-key-1 gold\n"
	_, err := policy.Parse("f.yaml", []byte("tiers: {default: free, keys_file: k.txt}\nrules:\n  - limits: unlimited\n"),
		func(string) ([]byte, error) { return []byte(keys), nil })
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"k.txt line 2: 1 fields", "k.txt line 3: 3 fields", "k.txt line 5: a key is given two tiers"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v\nwant %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "secret-key") {
		t.Fatalf("the error shows a key: %v", err)
	}
}

func TestHashFollowsContent(t *testing.T) {
	t.Parallel()
	a, err1 := policy.Parse("a", []byte("rules: [{limits: unlimited}]\n"), nil)
	b, err2 := policy.Parse("b", []byte("rules: [{limits: unlimited}]\n"), nil)
	c, err3 := policy.Parse("c", []byte("rules: [{limits: unlimited}] \n"), nil)
	if err := errors.Join(err1, err2, err3); err != nil {
		t.Fatal(err)
	}
	if a.Hash != b.Hash || a.Hash == c.Hash {
		t.Fatalf("hashes %s %s %s", a.Hash, b.Hash, c.Hash)
	}
}
