package scenario

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParsePathTemplate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want, err string
	}{
		{"", "/products/7", ""},
		{"/api/items/{product}", "/api/items/7", ""},
		{"/a/{product}/b/{product}?v=2", "/a/7/b/7?v=2", ""},
		{"/health", "/health", ""},
		{"api/items", "", "must start with /"},
		{"/items/{id}", "", "unknown placeholder"},
		{"/items/{product", "", "unknown placeholder"},
		{"/a b", "", "no spaces"},
		{"/a\r\nX: y", "", "no spaces"},
		{"/a#top", "", "fragment"},
	}
	for _, tt := range tests {
		p, err := ParsePathTemplate(tt.in)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("ParsePathTemplate(%q) = %v; want an error with %q", tt.in, err, tt.err)
		case tt.err == "" && err != nil:
			t.Errorf("ParsePathTemplate(%q): %v", tt.in, err)
		case tt.err == "" && p.Expand(7) != tt.want:
			t.Errorf("ParsePathTemplate(%q).Expand(7) = %q; want %q", tt.in, p.Expand(7), tt.want)
		}
	}
}

func TestParseHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Header
		err  string
	}{
		{"Authorization: Bearer x", Header{"Authorization", "Bearer x"}, ""},
		{"x-api-key:k", Header{"x-api-key", "k"}, ""},
		{"Accept: a/b, c/d", Header{"Accept", "a/b, c/d"}, ""},
		{"Host: api.test", Header{"Host", "api.test"}, ""},
		{"X-Empty:", Header{"X-Empty", ""}, ""},
		{"NoColon", Header{}, "'Name: value'"},
		{": v", Header{}, "not a valid token"},
		{"Bad Name: v", Header{}, "not a valid token"},
		{"Bad\tName: v", Header{}, "not a valid token"},
		{"Ünicode: v", Header{}, "not a valid token"},
		{"X-A: one\r\nX-B: two", Header{}, "CR, LF or NUL"},
		{"X-A: one\ntwo", Header{}, "CR, LF or NUL"},
		{"content-length: 5", Header{}, "hammer's own"},
		{"Transfer-Encoding: chunked", Header{}, "hammer's own"},
		{"Connection: close", Header{}, "hammer's own"},
	}
	for _, tt := range tests {
		h, err := ParseHeader(tt.in)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("ParseHeader(%q) = %v; want an error with %q", tt.in, err, tt.err)
		case tt.err == "" && (err != nil || h != tt.want):
			t.Errorf("ParseHeader(%q) = %+v, %v; want %+v", tt.in, h, err, tt.want)
		}
	}
}

func TestSourceIdentities(t *testing.T) {
	t.Parallel()
	for _, salt := range []uint8{0, 253, 254, 255} {
		ids, err := SourceIdentities(300, salt)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, id := range ids {
			if !strings.HasPrefix(id, "127.") || strings.HasPrefix(id, "127.0.") || strings.HasPrefix(id, "127.255.") || seen[id] {
				t.Fatalf("salt %d: identity %s is not a distinct 127.x.y.z address off 127.0/16 and 127.255/16", salt, id)
			}
			seen[id] = true
		}
	}
	if _, err := SourceIdentities(MaxIdentities+1, 0); err == nil {
		t.Fatal("more identities than addresses were accepted")
	}
}

// sourceTarget is NewTarget with source identities on url, or a skip where this
// machine cannot send from 127.x.y.z.
func sourceTarget(t *testing.T, url string, ids []string, conns int) *HTTPTarget {
	t.Helper()
	tg, err := NewTarget(TargetConfig{Bases: []string{url}, Identities: ids, Conns: conns, Timeout: 5 * time.Second, Identity: IdentitySource})
	if err != nil && strings.Contains(err.Error(), "cannot send from") {
		t.Skipf("this machine cannot bind 127.0.0.0/8 addresses: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tg.Close)
	return tg
}

func TestTargetSourceIdentitiesAreThePeers(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	peers := map[string]int{}
	forwarded := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		mu.Lock()
		peers[host]++
		if r.Header.Get("X-Forwarded-For") != "" {
			forwarded++
		}
		mu.Unlock()
	}))
	defer srv.Close()
	ids, err := SourceIdentities(5, 9)
	if err != nil {
		t.Fatal(err)
	}
	// Fewer connections than identities: each identity still gets one of its own.
	tg := sourceTarget(t, srv.URL, ids, 2)
	ctx := context.Background()
	for round := range 4 {
		for i := range ids {
			if s := send(ctx, tg, Arrival{Identity: int32(i), Product: 1}); s != Allowed {
				t.Fatalf("round %d, identity %s: %v", round, ids[i], s)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(peers) != len(ids) || forwarded != 0 {
		t.Fatalf("the server saw peers %v (%d with X-Forwarded-For); want each of %v four times, no header", peers, forwarded, ids)
	}
	for _, id := range ids {
		if peers[id] != 4 {
			t.Fatalf("the server saw peers %v; want each of %v four times", peers, ids)
		}
	}
}

func TestTargetSourceIdentityRefusesIPv6(t *testing.T) {
	t.Parallel()
	ids, _ := SourceIdentities(1, 0)
	_, err := NewTarget(TargetConfig{Bases: []string{"http://[::1]:8080"}, Identities: ids, Conns: 1, Timeout: time.Second, Identity: IdentitySource})
	if err == nil || !strings.Contains(err.Error(), "IPv4 loopback only") {
		t.Fatalf("a ::1 target with source identities: %v", err)
	}
	_, err = NewTarget(TargetConfig{Bases: []string{"http://127.0.0.1:8080"}, Identities: []string{"10.0.0.1"}, Conns: 1, Timeout: time.Second, Identity: IdentitySource})
	if err == nil || !strings.Contains(err.Error(), "not a 127.x.y.z") {
		t.Fatalf("a 10.x identity as a source address: %v", err)
	}
}

func TestTargetCustomPathHeadersAndDenyStatus(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.RequestURI()+" host="+r.Host+" auth="+r.Header.Get("Authorization")+
			" tenant="+strings.Join(r.Header.Values("X-Tenant"), "+")+" ua="+r.UserAgent()+" xff="+r.Header.Get("X-Forwarded-For"))
		mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer x" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/base/api/items/1":
		case "/base/api/items/2":
			w.WriteHeader(http.StatusTooManyRequests)
		case "/base/api/items/3":
			w.WriteHeader(http.StatusForbidden)
		case "/base/api/items/4": // a refusal by its headers, not its status
			w.Header().Set("RateLimit", `"default";r=0;t=3`)
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/base/api/items/5":
			w.Header().Set("X-RateLimit-Remaining", "0")
			w.WriteHeader(http.StatusBadRequest)
		case "/base/api/items/6": // quota left: this 400 is a plain failure
			w.Header().Set("RateLimit", `"default";r=3;t=3`)
			w.WriteHeader(http.StatusBadRequest)
		case "/base/api/items/7":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	ids := []string{"10.0.0.1"}
	tg, err := NewTarget(TargetConfig{
		Bases: []string{srv.URL + "/base/"}, Identities: ids, Conns: 2, Timeout: 5 * time.Second,
		Path:       "/api/items/{product}?v=2",
		Headers:    []Header{{"Authorization", "Bearer x"}, {"X-Tenant", "a"}, {"X-Tenant", "b"}, {"User-Agent", "probe/1"}, {"Host", "api.test"}},
		DenyStatus: []int{429, 403},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	rec := NewRecorder(ids)
	tg.Record = rec
	want := []Status{Allowed, Denied, Denied, Denied, Denied, Failed, Allowed, Failed}
	for i, w := range want {
		if s := send(context.Background(), tg, Arrival{Product: int32(i + 1)}); s != w {
			t.Errorf("product %d: %v, want %v", i+1, s, w)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	wantSeen := "GET /base/api/items/1?v=2 host=api.test auth=Bearer x tenant=a+b ua=probe/1 xff=10.0.0.1"
	if len(seen) != len(want) || seen[0] != wantSeen {
		t.Fatalf("the server saw %q; first want %q", seen, wantSeen)
	}
	// Decisions are recorded; failures are not.
	if c := rec.Checks(); c.Allowed != 2 || c.Denied != 4 || c.Errors != 0 {
		t.Errorf("recorded %+v; want 2 allowed, 4 denied", c)
	}
	if l := rec.Latency(); l.TotalCount() != 0 {
		t.Errorf("%d check latencies from a server without Server-Timing; want none", l.TotalCount())
	}
}
