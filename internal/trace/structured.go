package trace

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fastjson"
)

// parseTime reads a JSON or CSV time: RFC 3339 (fractions allowed), the combined
// log's 10/Oct/2000:13:55:36 -0700, or a number of seconds since the Unix epoch
// (fractions allowed).
func parseTime(s string, tc *timeCache) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("no time")
	}
	if c := s[0]; c >= '0' && c <= '9' && !strings.ContainsAny(s, "-/:T") {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f < 0 || f > 1e11 {
			return 0, fmt.Errorf("time %q is not seconds since the epoch", truncate(s, 40))
		}
		return int64(math.Round(f * 1e6)), nil
	}
	if us, err := tc.parse([]byte(s), time.RFC3339Nano); err == nil {
		return us, nil
	}
	if us, err := tc.parse([]byte(s), combinedTimeLayout); err == nil {
		return us, nil
	}
	return 0, fmt.Errorf("time %q is neither RFC 3339, 02/Jan/2006:15:04:05 -0700, nor seconds since the epoch", truncate(s, 40))
}

type jsonDecoder struct {
	lines  lineReader
	fields Fields
	times  timeCache
	parser fastjson.Parser
}

func (d *jsonDecoder) lineNumber() int64 { return d.lines.line }

func (d *jsonDecoder) next() (raw, error) {
	for {
		line, long, err := d.lines.next()
		if err != nil {
			return raw{}, err
		}
		if long {
			return raw{}, &badLine{d.lines.line, fmt.Sprintf("longer than %d bytes", maxLine)}
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		v, err := d.parser.ParseBytes(line)
		if err != nil {
			return raw{}, &badLine{d.lines.line, "not JSON: " + truncate(err.Error(), 80)}
		}
		if v.Type() != fastjson.TypeObject {
			return raw{}, &badLine{d.lines.line, "not a JSON object"}
		}
		var r raw
		var ts string
		for _, f := range []struct {
			name string
			dst  *string
		}{{d.fields.Time, &ts}, {d.fields.Client, &r.addr}, {d.fields.XFF, &r.xff}, {d.fields.Method, &r.method},
			{d.fields.Route, &r.route}, {d.fields.Key, &r.key}, {d.fields.Tier, &r.tier}} {
			switch fv := v.Get(f.name); {
			case fv == nil || fv.Type() == fastjson.TypeNull:
			case fv.Type() == fastjson.TypeString:
				*f.dst = string(fv.GetStringBytes())
			default:
				*f.dst = fv.String()
			}
		}
		if ts == "" {
			return raw{}, &badLine{d.lines.line, fmt.Sprintf("no %q field (name the time field with --fields time=NAME)", d.fields.Time)}
		}
		if r.time, err = parseTime(ts, &d.times); err != nil {
			return raw{}, &badLine{d.lines.line, err.Error()}
		}
		r.route = stripQuery(r.route)
		return r, nil
	}
}

func stripQuery(route string) string {
	if i := strings.IndexByte(route, '?'); i >= 0 {
		return route[:i]
	}
	return route
}

type csvDecoder struct {
	r      *csv.Reader
	fields Fields
	times  timeCache
	// cols is each field's column, -1 when the header lacks it; nil before the header.
	cols map[string]int
	line int64
}

func newCSVDecoder(br *bufio.Reader, f Fields) *csvDecoder {
	r := csv.NewReader(br)
	r.ReuseRecord = true
	r.FieldsPerRecord = -1
	return &csvDecoder{r: r, fields: f}
}

func (d *csvDecoder) lineNumber() int64 { return d.line }

func (d *csvDecoder) next() (raw, error) {
	for {
		rec, err := d.r.Read()
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				d.line = int64(pe.Line)
				return raw{}, &badLine{d.line, pe.Err.Error()}
			}
			return raw{}, err
		}
		line, _ := d.r.FieldPos(0)
		d.line = int64(line)
		if d.cols == nil {
			if err := d.header(rec); err != nil {
				return raw{}, err
			}
			continue
		}
		var r raw
		var ts string
		for _, f := range []struct {
			name string
			dst  *string
		}{{d.fields.Time, &ts}, {d.fields.Client, &r.addr}, {d.fields.XFF, &r.xff}, {d.fields.Method, &r.method},
			{d.fields.Route, &r.route}, {d.fields.Key, &r.key}, {d.fields.Tier, &r.tier}} {
			if i := d.cols[f.name]; i >= 0 && i < len(rec) {
				*f.dst = strings.Clone(rec[i])
			}
		}
		if ts == "" {
			return raw{}, &badLine{d.line, fmt.Sprintf("no value in the %q column", d.fields.Time)}
		}
		if r.time, err = parseTime(ts, &d.times); err != nil {
			return raw{}, &badLine{d.line, err.Error()}
		}
		r.route = stripQuery(r.route)
		return r, nil
	}
}

// errNoTimeColumn is wrapped by the error for a CSV header without the time field.
var errNoTimeColumn = errors.New("the CSV header has no time column")

func (d *csvDecoder) header(rec []string) error {
	at := map[string]int{}
	for i, name := range rec {
		at[strings.TrimSpace(strings.TrimPrefix(name, "\ufeff"))] = i
	}
	cols := map[string]int{}
	for _, name := range []string{d.fields.Time, d.fields.Client, d.fields.XFF, d.fields.Method, d.fields.Route, d.fields.Key, d.fields.Tier} {
		i, ok := at[name]
		if !ok {
			i = -1
		}
		cols[name] = i
	}
	if cols[d.fields.Time] < 0 {
		return fmt.Errorf("%w %q (its columns: %s); name it with --fields time=NAME", errNoTimeColumn, d.fields.Time, strings.Join(rec, ","))
	}
	d.cols = cols
	return nil
}
