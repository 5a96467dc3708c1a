// Package report renders ratelab's results: terminal tables, JSON and markdown. It is
// the only code in ratelab that formats output; it reads result structs and writes
// to the writer it is given.
package report

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ratelab/ratelab/scenario"
)

// HammerSchemaVersion is the version of the hammer JSON schema (docs/report-schema.md).
// Fields are only ever added within a version; a rename or a change of meaning makes a
// new one. Version 2 added the run's provenance (version, command line, start time,
// CPUs), validity, the interrupt's timing, a failed algorithm, status codes and the
// error set, error ratios, and thresholds without data. Version 3 added each
// algorithm's decisions per W/10 and latency distributions (the HTML report's charts),
// each algorithm's fail_mode and fault (the fault lab, docs/faults.md), the answers a
// node's in-memory limiter decided (local), and its limiter calls (checks answered
// locally, Redis calls per request),
// and a policy file's run (hammer --limits): policy_file and tiers.
const HammerSchemaVersion = 3

// Hammer is the report of one `ratelab hammer` run. Its JSON is the stable schema
// documented in docs/report-schema.md.
type Hammer struct {
	SchemaVersion int `json:"schema_version"`
	// Version is ratelab's version: a release tag, or the VCS revision it was built
	// from ("+dirty" when the tree had changes).
	Version string `json:"version"`
	// CommandLine is the command as given, with passwords and secret headers redacted.
	CommandLine []string `json:"command_line"`
	// StartedAt is when the run began.
	StartedAt time.Time `json:"started_at"`
	// GOMAXPROCS is the Go scheduler's processors, and NumCPU the CPUs the process
	// may use (nproc): load on a shared machine shows as late sends.
	GOMAXPROCS int `json:"gomaxprocs"`
	NumCPU     int `json:"nproc"`
	// Valid reports that the figures can be trusted; InvalidReasons say why not
	// (late sends over 1%, connections ran out, a run shorter than two windows,
	// limiter checks that failed).
	Valid          bool     `json:"valid"`
	InvalidReasons []string `json:"invalid_reasons,omitempty"`
	// Failed is the algorithm whose run could not be made, and why; the algorithms
	// before it are reported.
	Failed *Failure `json:"failed,omitempty"`
	// Backend is "embedded" or the Redis URL without its password, or "targets" when
	// running ratelab serve processes were hammered.
	Backend string `json:"backend"`
	// Embedded reports that the backend is the in-process Redis, whose latency is not
	// representative of a real server.
	Embedded bool `json:"embedded"`
	// Nodes is how many API nodes shared the traffic, round robin.
	Nodes int `json:"nodes"`
	// Store is "redis" (one shared limit) or "local" (one limiter per node).
	Store string `json:"store"`
	// Targets are the URLs hammered with --target; empty for in-process nodes.
	Targets []string `json:"targets,omitempty"`
	// TargetPolicies are the RateLimit-Policy headers the targets answered with, one
	// per target ("" for a target that sent none).
	TargetPolicies []string `json:"target_policies,omitempty"`
	// TargetPolicyMismatch says, one line per difference, where a target's policy
	// (its quota, exact window, algorithm) is not the --limit, --window and
	// --algorithms the report's worst case and burst ratio assume.
	TargetPolicyMismatch []string `json:"target_policy_mismatch,omitempty"`
	// Identity is how identities reached the nodes: "xff" (X-Forwarded-For) or
	// "source" (each identity its own 127.x.y.z source address).
	Identity string `json:"identity,omitempty"`
	// Path is the targets' path template, and DenyStatus the status codes read as
	// denied, with --target.
	Path       string `json:"path,omitempty"`
	DenyStatus []int  `json:"deny_status,omitempty"`
	Pattern    string `json:"pattern"`
	IPs        int    `json:"ips"`
	// Products is how many distinct products were requested, with Zipf popularity.
	Products int `json:"products"`
	// TargetRPS is the requested arrival rate; AchievedRPS what was sent, over every run.
	TargetRPS   float64 `json:"target_rps"`
	AchievedRPS float64 `json:"achieved_rps"`
	// Sent is every request sent, over every run.
	Sent int64 `json:"sent"`
	// LateSends counts requests sent (written to their connection) more than
	// LateAfterUs after their intended time.
	LateSends     int64   `json:"late_sends"`
	LateSendRatio float64 `json:"late_send_ratio"`
	LateAfterUs   int64   `json:"late_after_us"`
	// SendLagUs is how far behind schedule requests went out, over every run.
	SendLagUs SendLag `json:"send_lag_us"`
	// PacerRealtime reports that the pacer ran on a real-time (SCHED_FIFO) thread in
	// every run; without CAP_SYS_NICE it runs at normal priority.
	PacerRealtime bool `json:"pacer_realtime"`
	// PacerLagUs is how far behind schedule the pacer was ready to send, and PacerLate
	// how many times more than LateAfterUs; PoolFull counts sends that found every
	// connection busy and waited. With PoolFull 0, late sends are the OS running the
	// generator late, not the generator running out of connections.
	PacerLagUs SendLag `json:"pacer_lag_us"`
	PacerLate  int64   `json:"pacer_late"`
	PoolFull   int64   `json:"pool_full"`
	Seed       uint64  `json:"seed"`
	// DurationMs is each algorithm's run.
	DurationMs float64 `json:"duration_ms"`
	// Workers bounds the requests in flight: the connections hammer keeps open.
	Workers int `json:"workers"`
	// Interrupted reports a run stopped early (Ctrl-C); the figures cover what was sent.
	Interrupted bool `json:"interrupted"`
	// InterruptSignal and InterruptedAt are the signal that stopped the run and when it
	// came; LastSendAt is the last request's send, and StopLatencyUs the time from the
	// signal to that send (0 when nothing was sent after the signal).
	InterruptSignal string     `json:"interrupt_signal,omitempty"`
	InterruptedAt   *time.Time `json:"interrupted_at,omitempty"`
	LastSendAt      *time.Time `json:"last_send_at,omitempty"`
	StopLatencyUs   *int64     `json:"stop_latency_us,omitempty"`
	// Errors are requests without a usable answer over every run: transport errors and
	// 5xx answers that were not fail-closed refusals; ErrorRatio is Errors / Sent.
	Errors     int64       `json:"errors"`
	ErrorRatio float64     `json:"error_ratio"`
	Cache      Cache       `json:"cache"`
	Algorithms []Algorithm `json:"algorithms"`
	// Thresholds are the --max-*/--min-* checks and their outcome.
	Thresholds []Threshold `json:"thresholds,omitempty"`
	// PolicyFile and Tiers are a policy file's run (--limits): the file, and what
	// each client tier got, per limit (hammer_tiers.go).
	PolicyFile *PolicyFile `json:"policy_file,omitempty"`
	Tiers      []Tier      `json:"tiers,omitempty"`
}

// Cache is what the product cache did over every run.
type Cache struct {
	// Hits are answers from a cache tier (local, Redis, or a fill another request made).
	Hits     int64   `json:"hits"`
	Misses   int64   `json:"misses"`
	HitRatio float64 `json:"hit_ratio"`
	// BackendCalls are reads of the slow backend.
	BackendCalls  int64 `json:"backend_calls"`
	LocalHits     int64 `json:"local_hits"`
	RedisHits     int64 `json:"redis_hits"`
	FillLockWaits int64 `json:"fill_lock_waits"`
}

// Algorithm is one algorithm's run on the shared schedule.
type Algorithm struct {
	Name string `json:"name"`
	// FailMode is the fail mode of this row's run (open, closed, local) when
	// --fail-modes compared them; empty otherwise.
	FailMode string  `json:"fail_mode,omitempty"`
	Limit    int64   `json:"limit"`
	WindowMs float64 `json:"window_ms"`
	Burst    int64   `json:"burst"`
	Sent     int64   `json:"sent"`
	Allowed  int64   `json:"allowed"`
	Denied   int64   `json:"denied"`
	// Errors are requests that failed: no answer, or an answer other than 200 or 429.
	Errors int64 `json:"errors"`
	// FailOpen counts checks that failed (Redis unreachable) while the node served the
	// request anyway; they are among Allowed.
	FailOpen int64 `json:"fail_open"`
	// LocalEvictions counts the identities the nodes' in-memory limiters (--store
	// local) forgot to stay within their bound: each such client started afresh.
	LocalEvictions int64 `json:"local_evictions,omitempty"`
	// Limiter is what the nodes' Redis limiters did: checks answered locally, Redis
	// calls; absent when none ran in process.
	Limiter *LimiterCalls `json:"limiter,omitempty"`
	// FailClosed counts 5xx answers that were fail-closed refusals (the check failed
	// and the node refused); they are among Errors.
	FailClosed int64 `json:"fail_closed"`
	// Local counts the answers a node's in-memory limiter decided because its check
	// failed (fail mode local), admitted or refused; absent when none.
	Local int64 `json:"local,omitempty"`
	// ErrorRatio is the requests without a usable answer (transport errors and 5xx
	// answers that were not fail-closed refusals) over Sent.
	ErrorRatio float64 `json:"error_ratio"`
	// StatusCodes counts the answers by HTTP status ("200", "429", …).
	StatusCodes map[string]int64 `json:"status_codes,omitempty"`
	// ErrorSet is the requests that got no answer, by kind, the most frequent first.
	ErrorSet []ErrorKind `json:"error_set,omitempty"`
	// Cancelled are requests cut short when the run stopped.
	Cancelled        int64   `json:"cancelled"`
	AllowedPerSecond float64 `json:"allowed_per_second"`
	AchievedRPS      float64 `json:"achieved_rps"`
	LateSends        int64   `json:"late_sends"`
	LateSendRatio    float64 `json:"late_send_ratio"`
	SendLagUs        SendLag `json:"send_lag_us"`
	// ElapsedMs is the run's sending phase, from its start to its last send (or the
	// end of its schedule).
	ElapsedMs         float64 `json:"elapsed_ms"`
	PeakInWindow      int64   `json:"peak_in_window"`
	PeakInTenthWindow int64   `json:"peak_in_tenth_window"`
	// ExpectedMaxInWindow is the algorithm's worst case for one identity in any window
	// (times the nodes, for a local store).
	ExpectedMaxInWindow int64        `json:"expected_max_in_window"`
	BurstRatio          float64      `json:"burst_ratio"`
	CheckLatencyUs      CheckLatency `json:"check_latency_us"`
	// CheckLatencyUnknown reports that no check was timed (a target that sends no
	// Server-Timing, so is not ratelab serve): CheckLatencyUs is then all zero, not
	// measured, and is never to be shown as a latency.
	CheckLatencyUnknown bool            `json:"check_latency_unknown,omitempty"`
	E2ELatencyUs        E2ELatency      `json:"e2e_latency_us"`
	Timeline            *Timeline       `json:"timeline,omitempty"`
	Interrupted         bool            `json:"interrupted,omitempty"`
	Checks              scenario.Checks `json:"checks"`
	// Decisions and the latency distributions feed the HTML report's charts
	// (hammer_charts.go).
	Decisions        *Decisions            `json:"decisions,omitempty"`
	CheckPercentiles []scenario.Percentile `json:"check_latency_percentiles,omitempty"`
	E2EPercentiles   []scenario.Percentile `json:"e2e_latency_percentiles,omitempty"`
	// Fault is what the injected fault did (--fault); absent without one.
	Fault *Fault `json:"fault,omitempty"`
}

// CheckLatency is the time of the limiter call alone, in microseconds: the summary
// scenario makes of its merged histograms, written as it is.
type CheckLatency = scenario.Latency

// E2ELatency is the time from a request's intended send time to its answer, in microseconds.
type E2ELatency struct {
	P50  int64 `json:"p50"`
	P90  int64 `json:"p90"`
	P99  int64 `json:"p99"`
	P999 int64 `json:"p999"`
	Max  int64 `json:"max"`
}

// SendLag is how far behind its intended time a request went out, in microseconds.
type SendLag struct {
	P50 int64 `json:"p50"`
	P99 int64 `json:"p99"`
	Max int64 `json:"max"`
}

// Timeline is admitted requests per tenth of a window around one window edge, for one identity.
type Timeline struct {
	Identity string `json:"identity"`
	// EdgeOffsetMs is the edge's time from the start of the run.
	EdgeOffsetMs float64 `json:"edge_offset_ms"`
	BucketMs     float64 `json:"bucket_ms"`
	// Counts are one window before the edge, then one window after it.
	Counts []int64 `json:"counts"`
}

// ErrorKind is one kind of transport error and how often it happened.
type ErrorKind struct {
	Kind  string `json:"kind"`
	Count int64  `json:"count"`
	// Example is the message of the first such error.
	Example string `json:"example"`
}

// Failure is an algorithm whose run failed, and the error.
type Failure struct {
	Algorithm string `json:"algorithm"`
	Error     string `json:"error"`
}

// Threshold is one --max-*/--min-* check.
type Threshold struct {
	// Name is the flag, e.g. "max-burst-ratio".
	Name string `json:"name"`
	// Subject is what was measured: an algorithm's name, "cache", or "run".
	Subject string  `json:"subject"`
	Limit   float64 `json:"limit"`
	Value   float64 `json:"value"`
	OK      bool    `json:"ok"`
	// NoData says what was missing when there was nothing to measure (no checks, no
	// answers): such a threshold is missed, never passed silently.
	NoData string `json:"no_data,omitempty"`
}

// Missed lists the thresholds that were not met.
func (h *Hammer) Missed() []Threshold {
	var out []Threshold
	for _, t := range h.Thresholds {
		if !t.OK {
			out = append(out, t)
		}
	}
	return out
}

// DescribeMissed says which thresholds were missed, in one line, for the error message.
func DescribeMissed(missed []Threshold) string {
	parts := make([]string, len(missed))
	for i, t := range missed {
		parts[i] = describeThreshold(t)
	}
	return strings.Join(parts, "; ")
}

func describeThreshold(t Threshold) string {
	op := "≤"
	if strings.HasPrefix(t.Name, "min-") {
		op = "≥"
	}
	val, lim := trimFloat(t.Value), trimFloat(t.Limit)
	if t.Name == "max-check-p99" {
		val, lim = micros(int64(t.Value)), micros(int64(t.Limit))
	}
	if t.NoData != "" {
		return fmt.Sprintf("--%s: %s has no data (%s), want %s %s", t.Name, t.Subject, t.NoData, op, lim)
	}
	return fmt.Sprintf("--%s: %s %s, want %s %s", t.Name, t.Subject, val, op, lim)
}

// WriteHammer renders h in format (table, json, markdown or html) to w.
func WriteHammer(w io.Writer, format string, h *Hammer) error {
	switch format {
	case FormatJSON:
		return HammerJSON(w, h)
	case FormatMarkdown:
		return HammerMarkdown(w, h)
	case FormatHTML:
		return HammerHTML(w, h)
	case FormatTable, "":
		return HammerTable(w, h)
	}
	return fmt.Errorf("output format %q: choose one of %s", format, strings.Join(Formats(), ", "))
}
