package trace

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/ratelab/ratelab/algorithms"
)

// raw is one request as a format's decoder reads it, before the client is identified.
type raw struct {
	time                                int64
	addr, xff, key, method, route, tier string
}

// decoder reads one format: the next request, a *badLine for a line that did not
// parse, io.EOF at the end, or the error of the stream.
type decoder interface {
	next() (raw, error)
}

type badLine struct {
	line   int64
	reason string
}

func (b *badLine) Error() string { return fmt.Sprintf("line %d: %s", b.line, b.reason) }

// Reader reads a trace's requests in time order. It holds Options.Reorder requests
// at most, whatever the trace's length.
type Reader struct {
	opts    Options
	dec     decoder
	closer  io.Closer
	counter *countingReader
	stats   Stats
	from    int64
	to      int64
	// held[head:] are requests waiting for those that may come before them, sorted
	// by time, then by order in the trace.
	held    []Request
	head    int
	lastOut int64
	started bool
	eof     bool
}

// Open opens the trace at path ("-" for in), gzipped or not (told by its content),
// for reading with opts. The caller closes it.
func Open(path string, in io.Reader, opts Options) (*Reader, error) {
	var r io.Reader = in
	var closer io.Closer = io.NopCloser(nil)
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("trace: %w", err)
		}
		r, closer = f, f
	}
	tr, err := NewReader(r, opts)
	if err != nil {
		_ = closer.Close()
		return nil, fmt.Errorf("trace %s: %w", path, err)
	}
	tr.closer = closer
	return tr, nil
}

// ErrUnknownFormat is wrapped by the error for a format that is not one of Formats.
var ErrUnknownFormat = errors.New("unknown trace format")

// NewReader reads a trace from r with opts.
func NewReader(r io.Reader, opts Options) (*Reader, error) {
	if opts.Format != "" && !slices.Contains(Formats(), opts.Format) {
		return nil, fmt.Errorf("%w %q; choose one of %s", ErrUnknownFormat, opts.Format, strings.Join(Formats(), ", "))
	}
	if opts.Client == "" {
		opts.Client = ClientRemoteAddr
	}
	if !slices.Contains(ClientModes(), opts.Client) {
		return nil, fmt.Errorf("client %q: choose one of %s", opts.Client, strings.Join(ClientModes(), ", "))
	}
	if opts.IPv6Prefix == 0 {
		opts.IPv6Prefix = algorithms.DefaultIPv6Prefix
	}
	if err := algorithms.CheckIPv6Prefix(opts.IPv6Prefix); err != nil {
		return nil, err
	}
	if opts.Fields == (Fields{}) {
		opts.Fields = DefaultFields()
	}
	if opts.Reorder <= 0 {
		opts.Reorder = DefaultReorder
	}
	tr := &Reader{opts: opts, counter: &countingReader{r: r}, closer: io.NopCloser(nil)}
	br := bufio.NewReaderSize(tr.counter, 1<<16)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		br = bufio.NewReaderSize(zr, 1<<16)
		tr.stats.Gzip = true
	}
	format := opts.Format
	if format == "" {
		format = sniff(br)
	}
	tr.stats.Format = format
	switch format {
	case FormatCombined:
		tr.dec = &combinedDecoder{lines: lineReader{r: br}}
	case FormatJSON:
		tr.dec = &jsonDecoder{lines: lineReader{r: br}, fields: opts.Fields}
	case FormatCSV:
		tr.dec = newCSVDecoder(br, opts.Fields)
	}
	if !opts.From.IsZero() {
		tr.from = opts.From.UnixMicro()
	}
	if !opts.To.IsZero() {
		tr.to = opts.To.UnixMicro()
	}
	return tr, nil
}

// sniff picks a format from the first line: an object is JSON lines, a line with a
// [time] and a quoted request is a combined log, anything else CSV.
func sniff(br *bufio.Reader) string {
	head, _ := br.Peek(4096)
	line := head
	if i := strings.IndexByte(string(head), '\n'); i >= 0 {
		line = head[:i]
	}
	s := strings.TrimSpace(string(line))
	switch {
	case strings.HasPrefix(s, "{"):
		return FormatJSON
	case strings.Contains(s, "[") && strings.Contains(s, `"`):
		return FormatCombined
	}
	return FormatCSV
}

// Close closes the file the trace was opened from.
func (tr *Reader) Close() error { return tr.closer.Close() }

// Stats is what has been read so far.
func (tr *Reader) Stats() Stats {
	s := tr.stats
	s.Bytes = tr.counter.n.Load()
	s.BadSamples = slices.Clone(s.BadSamples)
	return s
}

// BytesRead is how many bytes of the file have been read so far (for a progress
// bar); it is safe to call from any goroutine while another reads.
func (tr *Reader) BytesRead() int64 { return tr.counter.n.Load() }

// Next returns the next request in time order, or io.EOF after the last. A request
// that the reorder buffer could not put back in order is returned at the time of the
// request before it, and counted in Stats.Reordered.
func (tr *Reader) Next() (Request, error) {
	for !tr.eof && len(tr.held)-tr.head <= tr.opts.Reorder {
		r, err := tr.read()
		if err == io.EOF {
			tr.eof = true
			break
		}
		if err != nil {
			return Request{}, err
		}
		tr.push(r)
	}
	if len(tr.held) == tr.head {
		return Request{}, io.EOF
	}
	r := tr.pop()
	if tr.started && r.Time < tr.lastOut {
		r.Time = tr.lastOut
		tr.stats.Reordered++
	}
	tr.started, tr.lastOut = true, r.Time
	tr.stats.Requests++
	return r, nil
}

// read returns the next request of the trace in the range, identified.
func (tr *Reader) read() (Request, error) {
	for {
		rw, err := tr.dec.next()
		tr.stats.Lines = tr.lineCount()
		var bad *badLine
		if errors.As(err, &bad) {
			if tr.opts.Strict {
				return Request{}, fmt.Errorf("%w %d: %s (drop --strict to count such lines and go on)", ErrStrict, bad.line, bad.reason)
			}
			tr.stats.bad(bad.line, bad.reason)
			continue
		}
		if err != nil {
			return Request{}, err
		}
		if (tr.from != 0 && rw.time < tr.from) || (tr.to != 0 && rw.time >= tr.to) {
			tr.stats.OutOfRange++
			continue
		}
		client, err := tr.identify(rw)
		if err != nil {
			line := tr.lineCount()
			if tr.opts.Strict {
				return Request{}, fmt.Errorf("%w %d: %v (drop --strict to count such lines and go on)", ErrStrict, line, err)
			}
			tr.stats.bad(line, err.Error())
			continue
		}
		return Request{Time: rw.time, Client: client, Method: rw.method, Route: rw.route, Key: rw.key, Tier: rw.tier}, nil
	}
}

func (tr *Reader) lineCount() int64 {
	if c, ok := tr.dec.(interface{ lineNumber() int64 }); ok {
		return c.lineNumber()
	}
	return 0
}

// identify is the identity a limiter would key the request on.
func (tr *Reader) identify(rw raw) (string, error) {
	s := rw.addr
	switch tr.opts.Client {
	case ClientKey:
		if rw.key != "" && rw.key != "-" {
			return KeyIdentity(rw.key), nil
		}
	case ClientXFF:
		if x := strings.TrimSpace(rw.xff); x != "" && x != "-" {
			first, _, _ := strings.Cut(x, ",")
			s = strings.TrimSpace(first)
		}
	}
	if s == "" || s == "-" {
		return "", errors.New("no client")
	}
	if addr, err := netip.ParseAddr(s); err == nil {
		if addr.Is4() {
			return s, nil // a dotted quad that parses is canonical
		}
		return algorithms.IPIdentity(addr, tr.opts.IPv6Prefix), nil
	}
	id, err := algorithms.NormalizeIdentity(s)
	if err != nil {
		return "", fmt.Errorf("client %q: %v", truncate(s, 40), err)
	}
	return id, nil
}

// KeyIdentity is the identity of a client known by an API key: "key-" and the first
// 16 hex digits of the key's SHA-256, so that no report shows the key.
func KeyIdentity(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "key-" + hex.EncodeToString(sum[:8])
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// push adds r to the held requests, kept sorted by time, and among equal times in
// trace order: an insertion from the back, which for a log in order or nearly in
// order moves nothing or little.
func (tr *Reader) push(r Request) {
	tr.held = append(tr.held, r)
	for i := len(tr.held) - 1; i > tr.head && tr.held[i-1].Time > tr.held[i].Time; i-- {
		tr.held[i-1], tr.held[i] = tr.held[i], tr.held[i-1]
	}
}

// pop removes and returns the earliest held request.
func (tr *Reader) pop() Request {
	r := tr.held[tr.head]
	tr.held[tr.head] = Request{}
	tr.head++
	if tr.head == len(tr.held) {
		tr.held, tr.head = tr.held[:0], 0
	} else if tr.head >= 4096 && tr.head*2 >= len(tr.held) {
		n := copy(tr.held, tr.held[tr.head:])
		clear(tr.held[n:])
		tr.held, tr.head = tr.held[:n], 0
	}
	return r
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// maxLine bounds a line of a combined log or JSON lines; a longer one is bad.
const maxLine = 1 << 16

// lineReader reads lines of at most maxLine bytes, counting them.
type lineReader struct {
	r    *bufio.Reader
	line int64
}

// next returns the next line without its end, or ok false with the reason it is too long.
func (lr *lineReader) next() (line []byte, long bool, err error) {
	b, err := lr.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		lr.line++
		for err == bufio.ErrBufferFull {
			_, err = lr.r.ReadSlice('\n')
		}
		if err != nil && err != io.EOF {
			return nil, false, err
		}
		return nil, true, nil
	}
	if err == io.EOF && len(b) == 0 {
		return nil, false, io.EOF
	}
	if err != nil && err != io.EOF {
		return nil, false, err
	}
	lr.line++
	b = trimEOL(b)
	return b, false, nil
}

func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}

type combinedDecoder struct {
	lines lineReader
	times timeCache
}

func (d *combinedDecoder) lineNumber() int64 { return d.lines.line }

func (d *combinedDecoder) next() (raw, error) {
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
		c, err := splitCombined(line)
		if err != nil {
			return raw{}, &badLine{d.lines.line, err.Error()}
		}
		t, err := d.times.parse(c.time, combinedTimeLayout)
		if err != nil {
			return raw{}, &badLine{d.lines.line, fmt.Sprintf("time [%s] is not day/Mon/year:hh:mm:ss zone", truncate(string(c.time), 40))}
		}
		method, route := requestLine(c.request)
		return raw{time: t, addr: string(c.addr), xff: string(c.xff), method: string(method), route: string(route)}, nil
	}
}
