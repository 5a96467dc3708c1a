// Package wire holds the formats that one part of ratelab writes on an HTTP answer and
// another reads back: the header names, and a Format and a Parse for each header value
// (Server-Timing, RateLimit-Policy, RateLimit, X-Cache). A ratelab serve node formats
// them per request; ratelab hammer --target and the reports parse them. Keeping both
// sides here, with round-trip tests, is what stops the writer and the reader drifting.
package wire

// The header names ratelab writes on a Product API answer and reads from a target's.
const (
	// HeaderServerTiming carries the limiter check's duration and outcome (W3C Server Timing).
	HeaderServerTiming = "Server-Timing"
	// HeaderRateLimitPolicy is the IETF draft's quota policy (draft-ietf-httpapi-ratelimit-headers).
	HeaderRateLimitPolicy = "RateLimit-Policy"
	// HeaderRateLimit is the IETF draft's current state: remaining quota and reset.
	HeaderRateLimit = "RateLimit"
	// HeaderXRateLimitLimit is the older de-facto header of the limit, a plain integer.
	HeaderXRateLimitLimit = "X-RateLimit-Limit"
	// HeaderXRateLimitRemaining is the older de-facto header of the requests left, a plain integer.
	HeaderXRateLimitRemaining = "X-RateLimit-Remaining"
	// HeaderXRateLimitReset is the older de-facto header of the seconds until the state
	// is fresh again (or until a denied request may retry), a plain integer.
	HeaderXRateLimitReset = "X-RateLimit-Reset"
	// HeaderRetryAfter is RFC 9110's delay before retrying, in seconds.
	HeaderRetryAfter = "Retry-After"
	// HeaderXCache says where a product's answer came from (see FormatXCache).
	HeaderXCache = "X-Cache"
)
