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
// `ratelimit-shadow;desc="denied"`.
func FormatShadowTiming(outcome string) string {
	return ShadowTimingMetric + `;desc="` + outcome + `"`
}

// ParseShadowTiming finds the shadow limits' metric among Server-Timing values and
// returns its outcome; ok is false when no value carries it.
func ParseShadowTiming(values []string) (outcome string, ok bool) {
	for _, v := range values {
		for metric := range strings.SplitSeq(v, ",") {
			params := strings.Split(metric, ";")
			if strings.TrimSpace(params[0]) != ShadowTimingMetric {
				continue
			}
			for _, p := range params[1:] {
				if name, value, _ := strings.Cut(strings.TrimSpace(p), "="); strings.EqualFold(name, "desc") {
					outcome = strings.Trim(value, `"`)
				}
			}
			return outcome, true
		}
	}
	return "", false
}
