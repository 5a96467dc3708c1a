package trace

import (
	"bytes"
	"errors"
	"time"
)

// combinedTimeLayout is $time_local (Apache's %t): 10/Oct/2000:13:55:36 -0700. A
// fraction of a second after the seconds is read too.
const combinedTimeLayout = "02/Jan/2006:15:04:05 -0700"

// combinedLine is the fields of a combined log line that a trace keeps, as slices of
// the line.
type combinedLine struct {
	addr, time, request, xff []byte
}

var (
	errNoAddr     = errors.New("no remote address")
	errNoTime     = errors.New("no [time]")
	errNoRequest  = errors.New("no quoted request line")
	errNoStatus   = errors.New("no status and size after the request")
	errBadQuoting = errors.New("a quoted field is not closed")
)

// splitCombined cuts a combined log line:
//
//	$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"
//
// optionally followed by more quoted fields, the first of which is taken for
// "$http_x_forwarded_for" (nginx's stock log_format main). Inside quotes a backslash
// escapes the next byte, as Apache writes \"; nginx writes a quote as \x22, which
// needs nothing.
func splitCombined(line []byte) (combinedLine, error) {
	var c combinedLine
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return c, errNoAddr
	}
	c.addr = line[:sp]
	rest := line[sp+1:]
	open := bytes.IndexByte(rest, '[')
	if open < 0 {
		return c, errNoTime
	}
	end := bytes.IndexByte(rest[open:], ']')
	if end < 0 {
		return c, errNoTime
	}
	c.time = rest[open+1 : open+end]
	rest = rest[open+end+1:]
	var err error
	if c.request, rest, err = quoted(rest); err != nil {
		if err == errNoQuote {
			return c, errNoRequest
		}
		return c, err
	}
	// status and bytes, then the quoted referer and user agent.
	rest = bytes.TrimLeft(rest, " ")
	status := bytes.IndexByte(rest, ' ')
	if status < 3 {
		return c, errNoStatus
	}
	for _, b := range rest[:status] {
		if b < '0' || b > '9' {
			return c, errNoStatus
		}
	}
	rest = rest[status:]
	for range 2 {
		if _, rest, err = quoted(rest); err != nil {
			if err == errNoQuote {
				return c, nil // common log format, or combined cut short: what matters is read
			}
			return c, err
		}
	}
	if xff, _, err := quoted(rest); err == nil {
		c.xff = xff
	}
	return c, nil
}

var errNoQuote = errors.New("no quoted field")

// quoted reads the first quoted field of b, after spaces and anything not a quote
// (the size, the status), and returns its content and what follows it.
func quoted(b []byte) (field, rest []byte, err error) {
	q := bytes.IndexByte(b, '"')
	if q < 0 {
		return nil, b, errNoQuote
	}
	b = b[q+1:]
	for from := 0; ; {
		i := bytes.IndexByte(b[from:], '"')
		if i < 0 {
			return nil, nil, errBadQuoting
		}
		i += from
		// A quote after an odd number of backslashes is escaped (Apache's \").
		n := 0
		for n < i && b[i-1-n] == '\\' {
			n++
		}
		if n%2 == 0 {
			return b[:i], b[i+1:], nil
		}
		from = i + 1
	}
}

// requestLine reads the method and the path (without its query) of "GET /a?b HTTP/1.1".
// A request line that is not one (a TLS handshake sent to a plain port, "-") has
// neither, yet is a request the server answered.
func requestLine(r []byte) (method, route []byte) {
	sp := bytes.IndexByte(r, ' ')
	if sp < 0 {
		return nil, nil
	}
	method, r = r[:sp], r[sp+1:]
	if e := bytes.IndexAny(r, " ?"); e >= 0 {
		r = r[:e]
	}
	return method, r
}

// timeCache remembers the last time text parsed: a log's lines come many to a second.
type timeCache struct {
	text string
	us   int64
}

func (tc *timeCache) parse(b []byte, layout string) (int64, error) {
	if string(b) == tc.text && tc.text != "" {
		return tc.us, nil
	}
	t, err := time.Parse(layout, string(b))
	if err != nil {
		return 0, err
	}
	tc.text, tc.us = string(b), t.UnixMicro()
	return tc.us, nil
}
