package wire

import (
	"strconv"
	"strings"
	"time"
)

// The Server-Timing metric of the limiter check, and its outcomes (the desc parameter):
// a client such as ratelab hammer --target reads the decision and the check's own
// latency from it.
const (
	// ServerTimingMetric names the limiter check's metric among a response's Server-Timing metrics.
	ServerTimingMetric = "ratelimit"
	// CheckAllowed: the limiter admitted the request.
	CheckAllowed = "allowed"
	// CheckDenied: the limiter refused the request.
	CheckDenied = "denied"
	// CheckError: the check failed and the node's fail mode decided instead.
	CheckError = "error"
	// CheckOverloaded: the node was too busy to check in time and refused with a 503
	// of its own, whatever its fail mode: no check, no fail mode.
	CheckOverloaded = "overloaded"
	// CheckTimeout: one check got no answer in its budget, no outage was declared,
	// and the node refused with a 503 of its own.
	CheckTimeout = "timeout"
	// CheckLocal: the check failed and the node's own in-memory limiter decided (fail
	// mode local); the status says whether it admitted (200) or refused (429).
	CheckLocal = "local"
)

// FormatServerTiming returns the Server-Timing value of a limiter check,
// `ratelimit;dur=0.231;desc="allowed"`: how long the check took, in milliseconds with
// three decimals (a microsecond), and its outcome (CheckAllowed, CheckDenied,
// CheckError, CheckOverloaded or CheckTimeout). It runs on every checked request, so it appends into one buffer.
func FormatServerTiming(took time.Duration, outcome string) string {
	b := make([]byte, 0, 48)
	b = append(b, ServerTimingMetric+";dur="...)
	b = strconv.AppendFloat(b, float64(took)/float64(time.Millisecond), 'f', 3, 64)
	b = append(b, `;desc="`...)
	b = append(b, outcome...)
	b = append(b, '"')
	return string(b)
}

// ParseServerTiming finds the limiter check's metric (ratelimit;dur=<ms>;desc="<outcome>")
// among Server-Timing header values and returns its duration and outcome; ok is false
// when no value carries it. A missing or negative dur reads as 0, a missing desc as "".
//
// Server-Timing is not a structured field (its grammar predates RFC 8941 and servers
// write dur with any number of decimals), so a structured-field parser would refuse
// valid headers from other servers; it is read by its own grammar here.
func ParseServerTiming(values []string) (took time.Duration, outcome string, ok bool) {
	for _, v := range values {
		for metric := range strings.SplitSeq(v, ",") {
			params := strings.Split(metric, ";")
			if strings.TrimSpace(params[0]) != ServerTimingMetric {
				continue
			}
			for _, p := range params[1:] {
				name, value, _ := strings.Cut(strings.TrimSpace(p), "=")
				switch strings.ToLower(name) {
				case "dur":
					if ms, err := strconv.ParseFloat(value, 64); err == nil && ms >= 0 {
						took = time.Duration(ms * float64(time.Millisecond))
					}
				case "desc":
					outcome = strings.Trim(value, `"`)
				}
			}
			return took, outcome, true
		}
	}
	return 0, "", false
}
