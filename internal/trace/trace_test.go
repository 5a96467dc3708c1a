package trace

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

func readAll(t *testing.T, r *Reader) []Request {
	t.Helper()
	var out []Request
	for {
		req, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, req)
	}
}

func open(t *testing.T, path string, opts Options) *Reader {
	t.Helper()
	r, err := Open(path, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func at(s string) int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UnixMicro()
}

func TestCombinedNginx(t *testing.T) {
	t.Parallel()
	r := open(t, "testdata/nginx.log", Options{})
	got := readAll(t, r)
	want := []Request{
		{Time: at("2026-11-24T09:00:00Z"), Client: "192.0.2.1", Method: "GET", Route: "/products/7"},
		{Time: at("2026-11-24T09:00:01Z"), Client: "2001:db8::/64", Method: "POST", Route: "/login"},
		{Time: at("2026-11-24T09:00:01Z"), Client: "2001:db8::/64", Method: "GET", Route: "/static/app.js"},
		// 10:00:02 +0100 is 09:00:02 UTC; a TLS handshake on a plain port is a request with no method.
		{Time: at("2026-11-24T09:00:02Z"), Client: "198.51.100.4"},
		{Time: at("2026-11-24T09:00:03Z"), Client: "192.0.2.1", Method: "GET", Route: "/products/8"},
		{Time: at("2026-11-24T09:00:04.25Z"), Client: "192.0.2.1", Method: "GET", Route: "/api/search"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d requests, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("request %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	s := r.Stats()
	if s.Format != FormatCombined || s.Lines != 9 || s.Bad != 2 || s.Requests != 6 || s.Gzip {
		t.Errorf("stats %+v", s)
	}
	if len(s.BadSamples) != 2 || s.BadSamples[0].Line != 5 || s.BadSamples[1].Line != 8 {
		t.Errorf("bad samples %+v, want lines 5 and 8", s.BadSamples)
	}
	if fi, _ := os.Stat("testdata/nginx.log"); s.Bytes != fi.Size() {
		t.Errorf("bytes %d, want the file's %d", s.Bytes, fi.Size())
	}
}

func TestCombinedApache(t *testing.T) {
	t.Parallel()
	got := readAll(t, open(t, "testdata/apache.log", Options{}))
	if len(got) != 3 {
		t.Fatalf("got %+v", got)
	}
	if got[0].Client != "127.0.0.1" || got[0].Time != at("2000-10-10T20:55:36Z") || got[0].Route != "/apache_pb.gif" {
		t.Errorf("first %+v", got[0])
	}
	// Apache's \" inside a quoted field does not end it; a common-log line has no referer or agent.
	if got[1].Route != "/q" || got[2].Route != "/common" {
		t.Errorf("got %+v", got)
	}
}

func TestCombinedXFF(t *testing.T) {
	t.Parallel()
	var clients []string
	for _, r := range readAll(t, open(t, "testdata/main.log", Options{Client: ClientXFF, IPv6Prefix: 128})) {
		clients = append(clients, r.Client)
	}
	// the first X-Forwarded-For entry; "-" falls back to $remote_addr.
	want := "198.51.100.7 10.0.0.2 2001:db8:0:1::9"
	if strings.Join(clients, " ") != want {
		t.Errorf("clients %q, want %q", clients, want)
	}
	clients = nil
	for _, r := range readAll(t, open(t, "testdata/main.log", Options{})) {
		clients = append(clients, r.Client)
	}
	if strings.Join(clients, " ") != "10.0.0.1 10.0.0.2 10.0.0.1" {
		t.Errorf("remote-addr clients %q", clients)
	}
}

func TestJSONLines(t *testing.T) {
	t.Parallel()
	f, err := ParseFields([]string{"time=ts,client=ip", "method=verb,route=path,key=api_key,tier=plan"})
	if err != nil {
		t.Fatal(err)
	}
	r := open(t, "testdata/requests.jsonl", Options{Fields: f, Client: ClientKey})
	got := readAll(t, r)
	want := []Request{
		{Time: at("2026-11-24T09:00:00.5Z"), Client: KeyIdentity("secret-1"), Method: "GET", Route: "/products/1", Key: "secret-1", Tier: "free"},
		{Time: at("2026-11-24T09:00:01.25Z"), Client: "192.0.2.2", Method: "GET", Route: "/products/2"},
		{Time: at("2026-11-24T09:00:02Z"), Client: "2001:db8::/64"},
		{Time: at("2026-11-24T09:00:04Z"), Client: "user-42", Method: "DELETE", Route: "/products/9"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("request %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	s := r.Stats()
	if s.Format != FormatJSON || s.Bad != 4 {
		t.Errorf("stats %+v", s)
	}
	if strings.Contains(KeyIdentity("secret-1"), "secret") {
		t.Error("the key shows in its identity")
	}
	var lines []int64
	for _, b := range s.BadSamples {
		lines = append(lines, b.Line)
	}
	if len(lines) != 4 || lines[0] != 4 || lines[3] != 7 {
		t.Errorf("bad lines %v, want 4 5 6 7", lines)
	}
}

func TestCSV(t *testing.T) {
	t.Parallel()
	r := open(t, "testdata/requests.csv", Options{Client: ClientKey})
	got := readAll(t, r)
	want := []Request{
		{Time: at("2026-11-24T09:00:00Z"), Client: KeyIdentity("k1"), Method: "GET", Route: "/products/1", Key: "k1"},
		{Time: at("2026-11-24T09:00:01Z"), Client: "192.0.2.2", Method: "GET", Route: "/products/2"},
		{Time: at("2026-11-24T09:00:03Z"), Client: KeyIdentity("k1"), Method: "GET", Route: "/products/3", Key: "k1"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("request %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	s := r.Stats()
	if s.Format != FormatCSV || s.Bad != 2 || s.BadSamples[0].Line != 4 || s.BadSamples[1].Line != 5 {
		t.Errorf("stats %+v", s)
	}
}

func TestCSVHeaderWithoutTime(t *testing.T) {
	t.Parallel()
	r, err := NewReader(strings.NewReader("when,who\n1,2\n"), Options{Format: FormatCSV})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); !errors.Is(err, errNoTimeColumn) || !strings.Contains(err.Error(), "--fields time=") {
		t.Errorf("err %v", err)
	}
}

func TestGzipAndStdin(t *testing.T) {
	t.Parallel()
	plain, err := os.ReadFile("testdata/nginx.log")
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(plain)
	_ = zw.Close()
	r, err := Open("-", bytes.NewReader(gz.Bytes()), Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := readAll(t, r)
	want := readAll(t, open(t, "testdata/nginx.log", Options{}))
	if len(got) != len(want) || got[5] != want[5] {
		t.Errorf("gzipped stdin gave %+v, want %+v", got, want)
	}
	if s := r.Stats(); !s.Gzip || s.Bytes != int64(gz.Len()) {
		t.Errorf("stats %+v, want gzip and %d bytes", s, gz.Len())
	}
}

func TestStrict(t *testing.T) {
	t.Parallel()
	r := open(t, "testdata/nginx.log", Options{Strict: true})
	var err error
	for err == nil {
		_, err = r.Next()
	}
	if !errors.Is(err, ErrStrict) || !strings.Contains(err.Error(), "line 5") {
		t.Errorf("err %v, want the first bad line, 5", err)
	}
}

func TestFromTo(t *testing.T) {
	t.Parallel()
	from, to := time.UnixMicro(at("2026-11-24T09:00:01Z")), time.UnixMicro(at("2026-11-24T09:00:03Z"))
	r := open(t, "testdata/nginx.log", Options{From: from, To: to})
	got := readAll(t, r)
	if len(got) != 3 || got[0].Time != from.UnixMicro() || got[2].Time >= to.UnixMicro() {
		t.Errorf("got %+v", got)
	}
	if s := r.Stats(); s.OutOfRange != 3 {
		t.Errorf("out of range %d, want 3", s.OutOfRange)
	}
}

func TestReorder(t *testing.T) {
	t.Parallel()
	log := "" +
		"192.0.2.1 - - [24/Nov/2026:09:00:05 +0000] \"GET /a HTTP/1.1\" 200 1 \"-\" \"-\"\n" +
		"192.0.2.2 - - [24/Nov/2026:09:00:03 +0000] \"GET /b HTTP/1.1\" 200 1 \"-\" \"-\"\n" +
		"192.0.2.3 - - [24/Nov/2026:09:00:06 +0000] \"GET /c HTTP/1.1\" 200 1 \"-\" \"-\"\n" +
		"192.0.2.4 - - [24/Nov/2026:09:00:01 +0000] \"GET /d HTTP/1.1\" 200 1 \"-\" \"-\"\n"
	r, err := NewReader(strings.NewReader(log), Options{Reorder: 2})
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	var last int64
	for _, req := range readAll(t, r) {
		if req.Time < last {
			t.Errorf("time went back: %+v", req)
		}
		last = req.Time
		routes = append(routes, req.Route)
	}
	// /b is put back before /a; /d comes after /b had to go, and is decided at /b's time.
	if strings.Join(routes, "") != "/b/d/a/c" {
		t.Errorf("order %v", routes)
	}
	if s := r.Stats(); s.Reordered != 1 {
		t.Errorf("reordered %d, want 1", s.Reordered)
	}
}

func TestWriterRoundTrip(t *testing.T) {
	t.Parallel()
	in := []Request{
		{Time: at("2026-11-24T09:00:00.000001Z"), Client: "10.0.0.1", Method: "GET", Route: "/products/1"},
		{Time: at("2026-11-24T09:00:00.5Z"), Client: "2001:db8::/64", Method: "GET", Route: "/products/2", Tier: "pro"},
	}
	for _, format := range []string{FormatCSV, FormatJSON} {
		var buf bytes.Buffer
		w, err := NewWriter(&buf, format)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range in {
			if err := w.Write(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		r, err := NewReader(&buf, Options{})
		if err != nil {
			t.Fatal(err)
		}
		got := readAll(t, r)
		if len(got) != 2 || got[0] != in[0] || got[1] != in[1] || r.Stats().Format != format {
			t.Errorf("%s: got %+v, want %+v", format, got, in)
		}
	}
}

func TestGenerate(t *testing.T) {
	t.Parallel()
	cfg := GenConfig{Seed: 7, Lines: 20_000, Clients: 200, BadEvery: 500}
	var a, b bytes.Buffer
	if err := Generate(&a, cfg); err != nil {
		t.Fatal(err)
	}
	if err := Generate(&b, cfg); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("the same config gave two logs")
	}
	if n := bytes.Count(a.Bytes(), []byte("\n")); n != 20_000 {
		t.Fatalf("%d lines, want 20000", n)
	}
	r, err := NewReader(bytes.NewReader(a.Bytes()), Options{})
	if err != nil {
		t.Fatal(err)
	}
	perClient := map[string]int{}
	ipv6 := 0
	for _, req := range readAll(t, r) {
		perClient[req.Client]++
		if strings.Contains(req.Client, ":") {
			ipv6++
		}
	}
	s := r.Stats()
	if s.Bad < 20 || s.Bad > 60 || s.Requests+s.Bad != 20_000 || s.Reordered != 0 {
		t.Errorf("stats %+v: want about 40 bad lines of 20000", s)
	}
	// The scraper (the first client) sends ScraperRPS every second.
	if span := 20_000 / len(perClient); perClient["100.0.0.0"] < 5*span {
		t.Errorf("scraper sent %d, others about %d", perClient["100.0.0.0"], span)
	}
	if ipv6 == 0 || !bytes.Contains(a.Bytes(), []byte(`\x22Pro\x22`)) {
		t.Error("no IPv6 client or no escaped quote in a user agent")
	}
	if len(perClient) < 150 {
		t.Errorf("%d clients seen, want most of 200", len(perClient))
	}
	var x bytes.Buffer
	if err := Generate(&x, GenConfig{Seed: 7, Lines: 100, Clients: 20, XFF: true}); err != nil {
		t.Fatal(err)
	}
	rx, _ := NewReader(bytes.NewReader(x.Bytes()), Options{Client: ClientXFF})
	for _, req := range readAll(t, rx) {
		if strings.HasPrefix(req.Client, "10.0.0.") {
			t.Fatalf("xff client %q is a load balancer", req.Client)
		}
	}
}

func TestBadOptions(t *testing.T) {
	t.Parallel()
	if _, err := NewReader(strings.NewReader(""), Options{Format: "xml"}); !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("format: %v", err)
	}
	if _, err := NewReader(strings.NewReader(""), Options{Client: "cookie"}); err == nil {
		t.Error("client mode cookie accepted")
	}
	if _, err := ParseFields([]string{"when=ts"}); !errors.Is(err, ErrBadFields) {
		t.Errorf("fields: %v", err)
	}
	if _, err := Open("testdata/missing.log", nil, Options{}); err == nil {
		t.Error("a missing file opened")
	}
	if err := Generate(io.Discard, GenConfig{Clients: 1, Lines: 1}); !errors.Is(err, ErrGenConfig) {
		t.Errorf("generate: %v", err)
	}
}

func TestQuoted(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, field, rest string }{
		{` "a b" x`, "a b", " x"},
		{` "a \"b\" c" x`, `a \"b\" c`, " x"},
		{` "ends in a backslash \\" x`, `ends in a backslash \\`, " x"},
		{` "nginx \x22q\x22"`, `nginx \x22q\x22`, ""},
	} {
		field, rest, err := quoted([]byte(tc.in))
		if err != nil || string(field) != tc.field || string(rest) != tc.rest {
			t.Errorf("quoted(%q) = %q, %q, %v; want %q, %q", tc.in, field, rest, err, tc.field, tc.rest)
		}
	}
	if _, _, err := quoted([]byte(` "never closed \"`)); err != errBadQuoting {
		t.Errorf("an unclosed field: %v", err)
	}
}
