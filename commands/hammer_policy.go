package commands

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"net/textproto"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/policy"
	"github.com/ratelab/ratelab/internal/productapi"
	"github.com/ratelab/ratelab/internal/redisconn"
	"github.com/ratelab/ratelab/internal/report"
	"github.com/ratelab/ratelab/scenario"
)

// hammer --limits FILE: the in-process nodes decide by a policy file, as serve
// --limits does, and each simulated client keeps one tier of the file for the whole
// run (--tier-mix), sending that tier's key in the header the file names. The run is
// one (the file), not one per algorithm, and the report counts per tier and per
// limit what the answers' headers said.

// policyRunName names the run of a policy file in the report's algorithms.
const policyRunName = "policy"

// tierWeight is one tier of --tier-mix and its weight.
type tierWeight struct {
	tier   string
	weight float64
}

// parseTierMix reads --tier-mix, "free=90,pro=9,internal=1": tier names with
// weights, in percent or relative (they are normalised), each tier once.
func parseTierMix(s string) ([]tierWeight, error) {
	var out []tierWeight
	var sum float64
	for part := range strings.SplitSeq(s, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(part), "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("%q: write each tier as name=weight, e.g. --tier-mix free=90,pro=9,internal=1", part)
		}
		weight, err := strconv.ParseFloat(strings.TrimSpace(w), 64)
		if err != nil || weight < 0 || weight > 1e9 {
			return nil, fmt.Errorf("%s=%s: the weight must be a number from 0 (percent, or relative to the others)", name, w)
		}
		if slices.ContainsFunc(out, func(t tierWeight) bool { return t.tier == name }) {
			return nil, fmt.Errorf("tier %q is listed twice", name)
		}
		out = append(out, tierWeight{tier: name, weight: weight})
		sum += weight
	}
	if sum == 0 {
		return nil, errors.New("every weight is 0: give at least one tier a weight above 0")
	}
	return out, nil
}

// validatePolicy checks --limits and --tier-mix beside the other options; the file
// itself is read when the run starts (loadHammerPolicy).
func (o HammerOptions) validatePolicy() error {
	if o.LimitsFile == "" {
		if o.TierMix != "" {
			return Usagef("--tier-mix needs --limits FILE: the tiers are the policy file's")
		}
		return nil
	}
	switch {
	case len(o.Targets) > 0:
		return Usagef("--limits and --target: hammer runs the policy file on its own in-process nodes; " +
			"to hammer a serve --limits process, drop --limits")
	case o.Store == productapi.StoreLocal:
		return Usagef("--limits keeps every limit in Redis; drop --store local")
	case o.MaxBurstRatio > 0:
		return Usagef("--max-burst-ratio and --limits: the burst ratio is against one limit, and a policy file has several; drop one of them")
	case len(o.Faults) > 0 || len(o.FailModes) > 0 || o.OnRedisError == productapi.FailLocal:
		return Usagef("--limits and the fault lab (--fault, --fail-modes, --on-redis-error local): not yet together; run the fault lab with --algorithms, or the policy file without faults")
	case o.Trace != "":
		return Usagef("--limits and --trace: not yet together; replay the trace with --algorithms, or ratelab simulate --trace FILE --limits FILE decides it in virtual time")
	}
	if o.TierMix != "" {
		if _, err := parseTierMix(o.TierMix); err != nil {
			return Usagef("--tier-mix: %v", err)
		}
	}
	return nil
}

// hammerPolicy is a policy file's run: the file, the tier of each simulated client
// and the headers it sends, and the tally of the answers.
type hammerPolicy struct {
	path string
	file *policy.Policy
	// tiers are the mix's tiers (the file's default tier alone without --tier-mix),
	// and weights their weights.
	tiers   []string
	weights []float64
	// tierOf[i] indexes tiers for identity i; headers[i] are what it sends.
	tierOf  []int
	headers [][]scenario.Header
	// apiKeys hash API keys for the nodes when the file identifies clients by key:
	// a secret of this run's own.
	apiKeys *algorithms.APIKeyHasher
	// reference is the limit the schedule's windows follow: the shortest-window
	// enforced limit of the rules the tiers' requests match when two of its windows
	// fit in the run, else --limit and --window's defaults.
	reference algorithms.Policy
	tally     *scenario.TierTally
}

// loadHammerPolicy reads --limits and gives each of ids a tier from --tier-mix. A
// file that is not valid, or a mix that names a tier the file does not have, is bad
// usage; the file's problems are written to errOut one a line.
func loadHammerPolicy(opts HammerOptions, ios IO, ids []string) (*hammerPolicy, error) {
	f, err := policy.Load(opts.LimitsFile)
	var bad *policy.Error
	if errors.As(err, &bad) {
		if werr := report.WriteProblems(ios.ErrOut, bad.Problems); werr != nil {
			return nil, werr
		}
		return nil, Usagef("--limits %s is not a valid policy file (see above); check it with ratelab limits check", opts.LimitsFile)
	}
	if err != nil {
		return nil, err
	}
	hp := &hammerPolicy{path: opts.LimitsFile, file: f, reference: opts.Policy}
	mix, err := hp.mix(opts.TierMix)
	if err != nil {
		return nil, err
	}
	for _, m := range mix {
		hp.tiers = append(hp.tiers, m.tier)
		hp.weights = append(hp.weights, m.weight)
	}
	hp.tierOf = assignTiers(len(ids), hp.weights, opts.Seed)
	hp.headers = hp.clientHeaders(ids)
	if f.Identity.Kind == policy.IdentityAPIKey {
		secret := make([]byte, 32)
		_, _ = rand.Read(secret)
		if hp.apiKeys, err = algorithms.NewAPIKeyHasher([]byte(hex.EncodeToString(secret))); err != nil {
			return nil, err
		}
	}
	// A run starts on a window edge of the schedule's limit and must hold two of its
	// windows: an hour's limit would hold the start back for up to an hour.
	if ref, ok := hp.shortestLimit(); ok && 2*ref.Window <= opts.Duration {
		hp.reference = ref
	}
	hp.tally = scenario.NewTierTally(ids, hp.tierOf, hp.tiers)
	return hp, nil
}

// mix is --tier-mix checked against the file's tiers; without it every client is
// of the default tier.
func (hp *hammerPolicy) mix(raw string) ([]tierWeight, error) {
	t := hp.file.Tiers
	if raw == "" {
		if t == nil {
			return []tierWeight{{tier: "", weight: 1}}, nil
		}
		return []tierWeight{{tier: t.Default, weight: 1}}, nil
	}
	if t == nil {
		return nil, Usagef("--tier-mix: %s has no tiers; add a tiers: section to it, or drop --tier-mix", hp.path)
	}
	mix, err := parseTierMix(raw)
	if err != nil {
		return nil, Usagef("--tier-mix: %v", err)
	}
	for _, m := range mix {
		if !slices.Contains(t.Names(), m.tier) {
			return nil, Usagef("--tier-mix: %s has no tier %q; its tiers are %s", hp.path, m.tier, strings.Join(t.Names(), ", "))
		}
	}
	return mix, nil
}

// assignTiers gives each of n clients a tier: as many of each as its share of the
// weights (largest remainders, so 90/9/1 of 100 clients is exactly 90, 9 and 1), in
// an order shuffled from seed: the same seed, the same clients in the same tiers.
func assignTiers(n int, weights []float64, seed uint64) []int {
	var sum float64
	for _, w := range weights {
		sum += w
	}
	counts := make([]int, len(weights))
	rems := make([]float64, len(weights))
	given := 0
	for i, w := range weights {
		exact := float64(n) * w / sum
		counts[i] = int(exact)
		rems[i] = exact - float64(counts[i])
		given += counts[i]
	}
	order := make([]int, len(weights))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return rems[order[a]] > rems[order[b]] })
	for i := 0; given < n; i++ {
		counts[order[i%len(order)]]++
		given++
	}
	out := make([]int, 0, n)
	for tier, c := range counts {
		for range c {
			out = append(out, tier)
		}
	}
	rng := mathrand.New(mathrand.NewPCG(seed, 0x7469_6572_6d69_7821))
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// clientHeaders are the headers each client sends: its tier's key in the file's
// tier header (the k-th client of a tier the k-th of the tier's keys, round robin;
// none for the default tier), and the identity the file asks for, when it comes from
// a header: the client's own value (its address for header:NAME, a key of its own,
// unknown to the file, for api-key), unless the tier's key already fills that header.
func (hp *hammerPolicy) clientHeaders(ids []string) [][]scenario.Header {
	t := hp.file.Tiers
	var tierHeader, idHeader string
	if t != nil {
		tierHeader = textproto.CanonicalMIMEHeaderKey(t.Header)
	}
	switch hp.file.Identity.Kind {
	case policy.IdentityAPIKey:
		idHeader = textproto.CanonicalMIMEHeaderKey(productapi.APIKeyHeader)
	case policy.IdentityHeader:
		idHeader = textproto.CanonicalMIMEHeaderKey(hp.file.Identity.Header)
	}
	keys := make([][]string, len(hp.tiers))
	for i, tier := range hp.tiers {
		if t != nil && tier != t.Default {
			keys[i] = t.KeysOf(tier)
		}
	}
	seen := make([]int, len(hp.tiers))
	out := make([][]scenario.Header, len(ids))
	for i, id := range ids {
		tier := hp.tierOf[i]
		var hs []scenario.Header
		if ks := keys[tier]; len(ks) > 0 {
			hs = append(hs, scenario.Header{Name: tierHeader, Value: ks[seen[tier]%len(ks)]})
			seen[tier]++
		}
		if idHeader != "" && (idHeader != tierHeader || len(hs) == 0) {
			v := id
			if hp.file.Identity.Kind == policy.IdentityAPIKey {
				v = "hammer-client-" + id
			}
			for idHeader == tierHeader && t.Of(v) != t.Default {
				v += "-" // never a key of the file: the client stays of the default tier
			}
			hs = append(hs, scenario.Header{Name: idHeader, Value: v})
		}
		out[i] = hs
	}
	return out
}

// rule is the index of the rule hammer's requests (GET /products/{id}) of tier match, or -1.
func (hp *hammerPolicy) rule(tier string) int {
	return hp.file.MatchIndex("GET", "/products/1", tier)
}

// shortestLimit is the enforced limit with the shortest window (then the lowest
// limit) among the rules the mix's tiers match; false when none is limited.
func (hp *hammerPolicy) shortestLimit() (algorithms.Policy, bool) {
	var best algorithms.Policy
	found := false
	for _, tier := range hp.tiers {
		i := hp.rule(tier)
		if i < 0 {
			continue
		}
		for _, l := range hp.file.Rules[i].Enforced() {
			p := l.Policy
			if !found || p.Window < best.Window || (p.Window == best.Window && p.Limit < best.Limit) {
				best, found = p, true
			}
		}
	}
	return best, found
}

// nodeLimits are the limits of an in-process node for the run of name.
func (o HammerOptions) nodeLimits(name string) productapi.Limits {
	l := productapi.Limits{Store: o.Store, Default: productapi.Rule{Algorithm: name, Policy: o.Policy}, Share: o.localShare()}
	if o.policy != nil {
		l = productapi.Limits{Store: productapi.StoreRedis, File: o.policy.file}
	}
	l.Batch, l.DenyCache = o.Batch, o.DenyCache
	return l
}

// nodeAPIKeys is the nodes' API key hasher: a policy file's that identifies clients by key.
func (hp *hammerPolicy) nodeAPIKeys() *algorithms.APIKeyHasher {
	if hp == nil {
		return nil
	}
	return hp.apiKeys
}

// configure gives each client its own headers, and each request time for the
// longest delay a leaky bucket of the file may make it wait (the schedule's limit
// is not the only one): nothing without a policy file.
func (hp *hammerPolicy) configure(cfg *scenario.TargetConfig) {
	if hp == nil {
		return
	}
	cfg.IdentityHeaders = hp.headers
	cfg.Timeout = max(cfg.Timeout, 10*time.Second+algorithms.MaxDelayCap)
}

// attach makes target count the answers per tier, and rec the decisions they carry
// (Server-Timing's check latency): the nodes' combined checks are not wrapped by rec.
func (hp *hammerPolicy) attach(target *scenario.HTTPTarget, rec *scenario.Recorder) {
	if hp == nil {
		return
	}
	target.Tiers, target.Record = hp.tally, rec
}

// finish makes run a policy file's: its peaks are not analysed (the file has several
// limits, and the tiers different ones: the tiers' table is the finding), and the
// answers' counts per tier go with it.
func (hp *hammerPolicy) finish(run *hammerRun) {
	if hp == nil {
		return
	}
	run.admitted, run.bound = nil, 0
	run.tiers = hp.tally.Counts()
}

// forget deletes the limiter keys of every rule of the file for ids, enforced and
// shadow, so that nothing of the run is left for the next (an hour's limit would
// otherwise hold its count for an hour).
func (hp *hammerPolicy) forget(conn *redisconn.Conn, keys algorithms.Keyspace, ids []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pipe := conn.Client.Pipeline()
	for i := range hp.file.Rules {
		r := &hp.file.Rules[i]
		for _, group := range [][]algorithms.NamedLimit{r.Enforced(), r.Shadowed()} {
			if len(group) == 0 {
				continue
			}
			m, err := algorithms.NewMultiRedis(conn.Client, keys, r.Name, group)
			if err != nil {
				continue
			}
			for _, id := range ids {
				if ks, err := m.StateKeys(id); err == nil {
					pipe.Del(ctx, ks...)
				}
			}
		}
	}
	_, _ = pipe.Exec(ctx)
}

// policyReport puts the file and the tiers' counts into h: one entry per tier of
// the mix, with the limits of the rule its requests match, in the file's order,
// and any other limit the answers named.
func policyReport(h *report.Hammer, runs []hammerRun, hp *hammerPolicy) {
	if hp == nil {
		return
	}
	pf := &report.PolicyFile{Path: hp.path, SHA256: hp.file.Hash, Identity: hp.file.Identity.Kind}
	if hp.file.Identity.Kind == policy.IdentityHeader {
		pf.Identity += ":" + hp.file.Identity.Header
	}
	if hp.file.Tiers != nil {
		pf.TierHeader, pf.DefaultTier = hp.file.Tiers.Header, hp.file.Tiers.Default
	}
	h.PolicyFile = pf
	for i := range h.Algorithms {
		if h.Algorithms[i].Name == policyRunName {
			h.Algorithms[i].Timeline = nil
		}
	}
	var counts []scenario.TierCount
	for _, r := range runs {
		if r.name == policyRunName {
			counts = r.tiers
		}
	}
	var sum float64
	for _, w := range hp.weights {
		sum += w
	}
	for i, tier := range hp.tiers {
		var c scenario.TierCount
		if i < len(counts) {
			c = counts[i]
		}
		h.Tiers = append(h.Tiers, tierRow(hp, tier, 100*hp.weights[i]/sum, c))
	}
}

// tierRow is one tier's entry of the report.
func tierRow(hp *hammerPolicy, tier string, share float64, c scenario.TierCount) report.Tier {
	t := report.Tier{
		Tier: tier, SharePercent: round1(share), Clients: c.Clients,
		Requests: c.Requests, Admitted: c.Admitted, Denied: c.Denied, Errors: c.Failed,
		DeniedUnnamed: c.DeniedUnnamed, ShadowChecked: c.ShadowChecked, ShadowDenied: c.ShadowDenied,
	}
	seen := make([]bool, len(c.Limits))
	take := func(name string, shadow bool) scenario.LimitCount {
		for j, l := range c.Limits {
			if l.Name == name && l.Shadow == shadow {
				seen[j] = true
				return l
			}
		}
		return scenario.LimitCount{Name: name, Shadow: shadow}
	}
	if i := hp.rule(tier); i >= 0 {
		r := &hp.file.Rules[i]
		t.Rule, t.Unlimited = r.Name, r.Unlimited
		for _, l := range r.Limits {
			lc := take(l.Name, l.Shadow)
			row := limitRow(lc, c)
			row.Algorithm, row.Policy, row.Limit, row.WindowMs, row.Burst = l.Algorithm, l.Policy.Describe(), l.Policy.Limit,
				float64(l.Policy.Window)/float64(time.Millisecond), l.Policy.EffectiveBurst()
			t.Limits = append(t.Limits, row)
		}
	}
	for j, l := range c.Limits {
		if !seen[j] {
			t.Limits = append(t.Limits, limitRow(l, c)) // named by the answers, not by this tier's rule
		}
	}
	return t
}

// limitRow is one limit's counts: an enforced limit's from the answers that listed
// it, a shadow limit's from the answers whose shadow limits were checked (a rule's
// shadow limits decide every request together).
func limitRow(l scenario.LimitCount, c scenario.TierCount) report.TierLimit {
	row := report.TierLimit{Name: l.Name, Shadow: l.Shadow, Requests: l.Requests, Admitted: l.Admitted,
		DeniedBy: l.DeniedBy, ShadowDenied: l.ShadowDenied}
	if l.Shadow {
		row.Requests, row.Admitted = c.ShadowChecked, c.ShadowServed
	}
	return row
}
