package wire

import "strings"

// FormatRateLimitPolicies returns several policies as one RateLimit-Policy value, a
// structured-field list: `"per-second";q=10;w=1, "per-hour";q=1000;w=3600`. Each
// item is FormatRateLimitPolicy's; ParseRateLimitPolicy reads the list back.
func FormatRateLimitPolicies(ps []RateLimitPolicy) string {
	items := make([]string, len(ps))
	for i, p := range ps {
		items[i] = FormatRateLimitPolicy(p)
	}
	return strings.Join(items, ", ")
}

// The Server-Timing metric of a policy's shadow limits: a second metric beside the
// check's own, so that a client that reads only "ratelimit" sees the enforced
// decision alone. Its desc is CheckDenied when a shadow limit would have denied the
// request (it was served all the same), CheckAllowed when none would.
const ShadowTimingMetric = "ratelimit-shadow"

// FormatShadowTiming returns the shadow limits' Server-Timing value,
// `ratelimit-shadow;desc="allowed"`, or for a would-be denial (outcome CheckDenied)
// with the shadow limit that would have denied, `ratelimit-shadow;desc="denied";limit="writes"`,
// so that a client (ratelab hammer) can count the would-be denials per limit. A
// limit's name is [A-Za-z0-9][A-Za-z0-9_.-]* (internal/policy), safe in a quoted
// string; "" leaves the parameter out.
func FormatShadowTiming(outcome, limit string) string {
	s := ShadowTimingMetric + `;desc="` + outcome + `"`
	if limit != "" {
		s += `;limit="` + limit + `"`
	}
	return s
}

// ParseShadowTiming finds the shadow limits' metric among Server-Timing values and
// returns its outcome and the limit it names ("" when none); ok is false when no
// value carries the metric.
func ParseShadowTiming(values []string) (outcome, limit string, ok bool) {
	for _, v := range values {
		for metric := range strings.SplitSeq(v, ",") {
			params := strings.Split(metric, ";")
			if strings.TrimSpace(params[0]) != ShadowTimingMetric {
				continue
			}
			for _, p := range params[1:] {
				name, value, _ := strings.Cut(strings.TrimSpace(p), "=")
				switch strings.ToLower(strings.TrimSpace(name)) {
				case "desc":
					outcome = strings.Trim(value, `"`)
				case "limit":
					limit = strings.Trim(value, `"`)
				}
			}
			return outcome, limit, true
		}
	}
	return "", "", false
}
