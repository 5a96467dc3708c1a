// Package scenario is ratelab's traffic and measurement: simulated client identities,
// traffic patterns turned into a deterministic open-loop schedule, the pacer that
// follows it and writes each request itself on keep-alive connections, the clock
// alignment to the limiter's windows, and what is measured on the way:
// per-check and end-to-end latency histograms, late sends, the achieved rate, and the
// burst analysis of every admitted request's server time. It returns plain structs
// and never prints; internal/report formats them.
package scenario
