package report

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// SimulateSchemaVersion is the version of the simulate JSON schema
// (docs/report-schema.md, "simulate"). Fields are only ever added within a version.
const SimulateSchemaVersion = 1

// Simulate is the report of one `ratelab simulate` run: what each algorithm, under
// each policy, would have admitted of a trace or a synthetic pattern, in virtual time.
type Simulate struct {
	SchemaVersion int      `json:"schema_version"`
	Version       string   `json:"version"`
	CommandLine   []string `json:"command_line"`
	// Source is "pattern" (hammer's synthetic traffic) or "trace" (a file).
	Source string `json:"source"`
	// Trace is what was read of the trace file, with Source "trace".
	Trace *SimulateTrace `json:"trace,omitempty"`
	// The synthetic pattern's settings, as hammer's, with Source "pattern".
	Pattern    string  `json:"pattern,omitempty"`
	IPs        int     `json:"ips,omitempty"`
	TargetRPS  float64 `json:"target_rps,omitempty"`
	Seed       uint64  `json:"seed"`
	DurationMs float64 `json:"duration_ms,omitempty"`
	// Requests and Clients are what was decided, from how many clients; First and
	// Last the first and last request's times; SpanMs the span a client's rate is
	// judged over.
	Requests int64     `json:"requests"`
	Clients  int       `json:"clients"`
	First    time.Time `json:"first"`
	Last     time.Time `json:"last"`
	SpanMs   float64   `json:"span_ms"`
	// Nodes, Store and Balancer: with store "local", each of Nodes has its own
	// limiter and Balancer ("round-robin" or "hash") spreads the requests; with
	// "redis" one limit is shared.
	Nodes    int    `json:"nodes"`
	Store    string `json:"store"`
	Balancer string `json:"balancer,omitempty"`
	// Sweep reports more than one policy: Algorithms holds each policy's algorithms.
	Sweep      bool                `json:"sweep"`
	Algorithms []SimulateAlgorithm `json:"algorithms"`
	// Limits is what a policy file decided (simulate --limits); Algorithms is then empty.
	Limits *SimulateLimits `json:"limits,omitempty"`
	// Interrupted reports a run stopped early; the figures cover what was read.
	Interrupted bool `json:"interrupted,omitempty"`
}

// SimulateTrace is what was read of a trace file.
type SimulateTrace struct {
	File   string `json:"file"`
	Format string `json:"format"`
	Gzip   bool   `json:"gzip"`
	// Client is how clients were identified: remote-addr, xff or key.
	Client     string    `json:"client"`
	Bytes      int64     `json:"bytes"`
	Lines      int64     `json:"lines"`
	BadLines   int64     `json:"bad_lines"`
	BadSamples []BadLine `json:"bad_samples,omitempty"`
	OutOfRange int64     `json:"out_of_range"`
	Reordered  int64     `json:"reordered"`
}

// BadLine is a line of a trace that did not parse.
type BadLine struct {
	Line   int64  `json:"line"`
	Reason string `json:"reason"`
}

// SimulateAlgorithm is one algorithm under one policy: hammer's figures, and what
// only a whole trace shows.
type SimulateAlgorithm struct {
	Name     string  `json:"name"`
	Limit    int64   `json:"limit"`
	WindowMs float64 `json:"window_ms"`
	Burst    int64   `json:"burst"`
	Sent     int64   `json:"sent"`
	Allowed  int64   `json:"allowed"`
	Denied   int64   `json:"denied"`
	// PeakInWindow and PeakInTenthWindow are the most admitted for one client in any
	// interval of length W and W/10; PeakClient is the first client that reached
	// PeakInWindow.
	PeakInWindow      int64  `json:"peak_in_window"`
	PeakInTenthWindow int64  `json:"peak_in_tenth_window"`
	PeakClient        string `json:"peak_client"`
	// ExpectedMaxInWindow is the algorithm's worst case for one client in any window
	// (times the nodes, for local limiters behind a round robin).
	ExpectedMaxInWindow int64   `json:"expected_max_in_window"`
	BurstRatio          float64 `json:"burst_ratio"`
	// WellBehavedRefused are the clients denied at least once although their rate
	// over the whole span was within the limit, and the denials they got.
	WellBehavedRefused WhoPaid `json:"well_behaved_refused"`
	// AbuseAdmitted are the clients over the limit over the whole span that still
	// got more than L in some window W, and what they got over L in their busiest.
	AbuseAdmitted WhoPaid `json:"abuse_admitted"`
	// Clients are the clients with the most denials, most first (--top).
	Clients  []SimulateClient `json:"clients"`
	Timeline *Timeline        `json:"timeline,omitempty"`
}

// WhoPaid counts clients of one kind and requests of theirs.
type WhoPaid struct {
	Clients  int64 `json:"clients"`
	Requests int64 `json:"requests"`
}

// SimulateClient is one client under one algorithm and policy.
type SimulateClient struct {
	Client       string     `json:"client"`
	Requests     int64      `json:"requests"`
	Allowed      int64      `json:"allowed"`
	Denied       int64      `json:"denied"`
	PeakInWindow int64      `json:"peak_in_window"`
	FirstDenial  *time.Time `json:"first_denial,omitempty"`
}

// WriteSimulate renders s in format (table, json, markdown or html) to w.
func WriteSimulate(w io.Writer, format string, s *Simulate) error {
	switch format {
	case FormatJSON:
		return writeJSON(w, s)
	case FormatMarkdown:
		return SimulateMarkdown(w, s)
	case FormatHTML:
		return SimulateHTML(w, s)
	case FormatTable, "":
		return SimulateTable(w, s)
	}
	return fmt.Errorf("output format %q: choose one of %s", format, strings.Join(Formats(), ", "))
}
