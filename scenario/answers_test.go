package scenario

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
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
