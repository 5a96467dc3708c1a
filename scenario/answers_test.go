package scenario

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ratelab/ratelab/internal/wire"
)

func TestHTTPTargetCountsStatusCodesAndErrors(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/products/2":
			w.WriteHeader(http.StatusTooManyRequests)
		case "/products/3":
			w.WriteHeader(http.StatusInternalServerError)
		case "/products/4": // a fail-closed refusal: the check failed and the node refused
			w.Header().Set(wire.HeaderServerTiming, wire.FormatServerTiming(30*time.Millisecond, wire.CheckError))
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	tg := newTarget(t, srv.URL, 2, time.Minute)
	ctx := context.Background()
	for _, p := range []int32{1, 1, 2, 3, 4, 4} {
		send(ctx, tg, Arrival{Product: p})
	}
	a := tg.Answers()
	want := map[int]int64{200: 2, 429: 1, 500: 1, 503: 2}
	if fmt.Sprint(a.Codes) != fmt.Sprint(want) || a.FailClosed != 2 || a.ServerErrors() != 1 || a.TransportErrors() != 0 {
		t.Fatalf("codes %v, fail-closed %d, server errors %d, transport errors %d; want %v, 2, 1, 0",
			a.Codes, a.FailClosed, a.ServerErrors(), a.TransportErrors(), want)
	}
	tg.ResetAnswers()
	if a := tg.Answers(); len(a.Codes) != 0 || a.FailClosed != 0 {
		t.Fatalf("after a reset: %+v", a)
	}

	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	tg = newTarget(t, deadURL, 1, time.Minute)
	for range 3 {
		send(ctx, tg, Arrival{Product: 1})
	}
	a = tg.Answers()
	e, ok := a.Errors["connection refused"]
	if len(a.Codes) != 0 || !ok || e.Count != 3 || a.TransportErrors() != 3 || e.Example == "" {
		t.Fatalf("a dead target: codes %v, errors %+v; want 3 refused connections with an example", a.Codes, a.Errors)
	}
}

func TestErrorKind(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("dial: %w", syscall.ECONNREFUSED), "connection refused"},
		{fmt.Errorf("read: %w", syscall.ECONNRESET), "connection reset"},
		{fmt.Errorf("read: %w", os.ErrDeadlineExceeded), "timeout"},
		{fmt.Errorf("read: %w", errors.New("malformed HTTP response \"x\"")), "bad response"},
		{errors.New("something else"), "other"},
	}
	for _, tt := range tests {
		if got := ErrorKind(tt.err); got != tt.want {
			t.Errorf("ErrorKind(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestAnswersErrorKindsMostFrequentFirst(t *testing.T) {
	t.Parallel()
	a := Answers{Errors: map[string]ErrorCount{"timeout": {Count: 1}, "connection refused": {Count: 5}, "other": {Count: 1}}}
	if got := fmt.Sprint(a.ErrorKinds()); got != "[connection refused other timeout]" {
		t.Fatalf("ErrorKinds() = %s", got)
	}
}

// TestAnswersFailModes: a node's Server-Timing tells a fail-open admission (200,
// "error"), a fail-closed refusal (503, "error") and a 503 of the node's own making
// ("overloaded", "timeout": the node failing, counted among server errors) apart, and
// counts the answers a node's own limiter decided ("local": fail mode local).
func TestAnswersFailModes(t *testing.T) {
	t.Parallel()
	var a Answers
	tg := &HTTPTarget{policies: make([]atomic.Pointer[string], 1), deny: []int{http.StatusTooManyRequests}}
	answer := func(code int, desc string) {
		h := http.Header{}
		h.Set(wire.HeaderServerTiming, wire.FormatServerTiming(time.Millisecond, desc))
		resp := &http.Response{StatusCode: code, Header: h}
		st, outcome := tg.decide(&node{}, resp, "10.0.0.1")
		a.answered(code, st, outcome)
	}
	answer(200, wire.CheckAllowed)
	answer(200, wire.CheckError)
	answer(429, wire.CheckDenied)
	answer(503, wire.CheckError)
	answer(503, wire.CheckOverloaded)
	answer(503, wire.CheckTimeout)
	answer(200, wire.CheckLocal)
	answer(429, wire.CheckLocal)
	if a.FailOpen != 1 || a.FailClosed != 1 || a.ServerErrors() != 2 || a.Local != 2 {
		t.Fatalf("fail-open %d, fail-closed %d, server errors %d, local %d; want 1, 1, 2, 2",
			a.FailOpen, a.FailClosed, a.ServerErrors(), a.Local)
	}
}
