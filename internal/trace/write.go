package trace

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// timeLayout is how a written trace gives times: RFC 3339 to the microsecond, in UTC.
const timeLayout = "2006-01-02T15:04:05.000000Z07:00"

// Writer writes a trace as CSV with a header, or as JSON lines, under DefaultFields'
// names: what a Reader reads back, request for request.
type Writer struct {
	format string
	bw     *bufio.Writer
	csv    *csv.Writer
}

// NewWriter writes a trace to w in format (FormatCSV or FormatJSON).
func NewWriter(w io.Writer, format string) (*Writer, error) {
	tw := &Writer{format: format, bw: bufio.NewWriterSize(w, 1<<16)}
	switch format {
	case FormatCSV:
		tw.csv = csv.NewWriter(tw.bw)
		f := DefaultFields()
		if err := tw.csv.Write([]string{f.Time, f.Client, f.Method, f.Route, f.Key, f.Tier}); err != nil {
			return nil, err
		}
	case FormatJSON:
	default:
		return nil, fmt.Errorf("%w %q for writing; choose %s or %s", ErrUnknownFormat, format, FormatCSV, FormatJSON)
	}
	return tw, nil
}

// Write writes one request.
func (tw *Writer) Write(r Request) error {
	ts := time.UnixMicro(r.Time).UTC().Format(timeLayout)
	if tw.csv != nil {
		return tw.csv.Write([]string{ts, r.Client, r.Method, r.Route, r.Key, r.Tier})
	}
	b, err := json.Marshal(struct {
		Time   string `json:"time"`
		Client string `json:"client"`
		Method string `json:"method,omitempty"`
		Route  string `json:"route,omitempty"`
		Key    string `json:"key,omitempty"`
		Tier   string `json:"tier,omitempty"`
	}{ts, r.Client, r.Method, r.Route, r.Key, r.Tier})
	if err != nil {
		return err
	}
	_, err = tw.bw.Write(append(b, '\n'))
	return err
}

// Flush writes what is buffered; call it after the last Write.
func (tw *Writer) Flush() error {
	if tw.csv != nil {
		tw.csv.Flush()
		if err := tw.csv.Error(); err != nil {
			return err
		}
	}
	return tw.bw.Flush()
}
