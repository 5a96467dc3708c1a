// Package trace reads and writes traces: streams of requests, each a time, a client,
// a method and a route, and optionally an API key and a tier. Readers take an
// nginx/Apache combined access log, JSON lines or CSV with a header, gzipped or not,
// in constant memory, counting the lines that do not parse instead of failing on them.
package trace

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// The trace formats.
const (
	// FormatCombined is the nginx/Apache combined log format (nginx's default
	// log_format combined), optionally followed by a quoted X-Forwarded-For field as
	// in nginx's stock log_format main.
	FormatCombined = "combined"
	// FormatJSON is JSON lines: one object per line, field names set by Fields.
	FormatJSON = "jsonl"
	// FormatCSV is CSV with a header line naming the fields.
	FormatCSV = "csv"
)

// Formats lists the trace formats a reader knows; "" (auto) picks one from the
// first line.
func Formats() []string { return []string{FormatCombined, FormatJSON, FormatCSV} }

// The ways a client is identified.
const (
	// ClientRemoteAddr is the connection's address: $remote_addr, or the client field.
	ClientRemoteAddr = "remote-addr"
	// ClientXFF is the first X-Forwarded-For entry, the remote address when there is none.
	ClientXFF = "xff"
	// ClientKey is the API key (shown hashed), the remote address when there is none.
	ClientKey = "key"
)

// ClientModes lists the ways a client is identified, the default first.
func ClientModes() []string { return []string{ClientRemoteAddr, ClientXFF, ClientKey} }

// Request is one request of a trace.
type Request struct {
	// Time is when the request came, in microseconds since the Unix epoch.
	Time int64
	// Client is the identity a limiter keys on: an IPv4 address, an IPv6 network
	// (grouped by Options.IPv6Prefix), any name the trace gives, or "key-" and a
	// hash of an API key.
	Client string
	Method string
	// Route is the request's path, without its query.
	Route string
	// Key is the API key, when the trace has one; Tier the client's tier, when it has one.
	Key  string
	Tier string
}

// Fields names the fields of a JSON or CSV trace.
type Fields struct {
	Time, Client, XFF, Method, Route, Key, Tier string
}

// DefaultFields are the field names unless told otherwise.
func DefaultFields() Fields {
	return Fields{Time: "time", Client: "client", XFF: "xff", Method: "method", Route: "route", Key: "key", Tier: "tier"}
}

// ErrBadFields is wrapped by the error ParseFields returns.
var ErrBadFields = errors.New("bad field names")

// ParseFields reads "time=ts,client=ip" over the defaults: each named field of a
// JSON or CSV trace and the name it has there.
func ParseFields(specs []string) (Fields, error) {
	f := DefaultFields()
	for _, spec := range specs {
		for _, kv := range strings.Split(spec, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok || v == "" {
				return Fields{}, fmt.Errorf("%w: %q is not field=name (e.g. time=ts)", ErrBadFields, kv)
			}
			switch k {
			case "time":
				f.Time = v
			case "client":
				f.Client = v
			case "xff":
				f.XFF = v
			case "method":
				f.Method = v
			case "route":
				f.Route = v
			case "key":
				f.Key = v
			case "tier":
				f.Tier = v
			default:
				return Fields{}, fmt.Errorf("%w: %q is not one of time, client, xff, method, route, key, tier", ErrBadFields, k)
			}
		}
	}
	return f, nil
}

// BadLine is a line that did not parse.
type BadLine struct {
	// Line is its number, from 1.
	Line   int64  `json:"line"`
	Reason string `json:"reason"`
}

// MaxBadSamples is how many bad lines Stats keeps to report.
const MaxBadSamples = 5

// Stats is what a reader has read so far.
type Stats struct {
	// Lines counts the lines (records, for CSV) read, the header and blank lines included.
	Lines int64 `json:"lines"`
	// Requests counts the requests returned.
	Requests int64 `json:"requests"`
	// Bad counts the lines that did not parse; BadSamples are the first MaxBadSamples.
	Bad        int64     `json:"bad_lines"`
	BadSamples []BadLine `json:"bad_samples,omitempty"`
	// OutOfRange counts the requests outside From/To.
	OutOfRange int64 `json:"out_of_range"`
	// Reordered counts the requests that came later in the trace than a request more
	// than the reorder buffer's span after them; each was decided at the time of the
	// request before it (see Options.Reorder).
	Reordered int64 `json:"reordered"`
	// Bytes is how many bytes of the file were read (compressed, for gzip).
	Bytes int64 `json:"bytes"`
	// Gzip reports a gzipped file.
	Gzip bool `json:"gzip"`
	// Format is the format read.
	Format string `json:"format"`
}

func (s *Stats) bad(line int64, reason string) {
	s.Bad++
	if len(s.BadSamples) < MaxBadSamples {
		s.BadSamples = append(s.BadSamples, BadLine{Line: line, Reason: reason})
	}
}

// ErrStrict is wrapped by the error a reader returns for a bad line with Options.Strict.
var ErrStrict = errors.New("bad line")

// Options say how a trace is read.
type Options struct {
	// Format is one of Formats, or "" to pick one from the first line.
	Format string
	// Fields names the fields of JSON and CSV (DefaultFields when zero).
	Fields Fields
	// Client is one of ClientModes ("" for ClientRemoteAddr).
	Client string
	// IPv6Prefix groups IPv6 clients by their network, as ratelab serve does (0 for
	// algorithms.DefaultIPv6Prefix).
	IPv6Prefix int
	// From and To keep the requests in [From, To); zero means unbounded.
	From, To time.Time
	// Strict makes a bad line an error instead of a count.
	Strict bool
	// Reorder is how many requests are held to put a trace back in time order
	// (DefaultReorder when 0): access logs are written as requests finish, so a slow
	// request is logged after faster ones that came later.
	Reorder int
}

// DefaultReorder is how many requests a reader holds to sort a trace's small
// disorders out.
const DefaultReorder = 4096
