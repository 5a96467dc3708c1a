package commands_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/productapi"
	"github.com/ratelab/ratelab/internal/redistest"
)

// TestServeByAPIKey: two serve nodes with one secret limit one API key together and
// key it by its HMAC, and neither the key nor the secret reaches the logs, at debug.
func TestServeByAPIKey(t *testing.T) {
	b := redistest.Standalone(t)
	const secret = "the secret of TestServeByAPIKey"
	const apiKey = "sk_live_TestServeByAPIKey"
	var urls []string
	var logs []*syncBuffer
	for range 2 {
		o := serveOpts(t, b.URL())
		o.KeyBy, o.APIKeySecret, o.LogLevel, o.BackendDelay = productapi.KeyByAPIKey, secret, "debug", 0
		url, l, _ := startServe(t, o)
		urls, logs = append(urls, url), append(logs, l)
	}
	var codes []int
	for i := range 5 {
		req, _ := http.NewRequest(http.MethodGet, urls[i%2]+"/products/1", nil)
		req.Header.Set(productapi.APIKeyHeader, apiKey)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		codes = append(codes, res.StatusCode)
	}
	if got := fmt.Sprint(codes); got != "[200 200 200 429 429]" {
		t.Errorf("one API key over two nodes with one secret: %s; want 200 200 200 429 429 (one limit of 3)", got)
	}
	h, _ := algorithms.NewAPIKeyHasher([]byte(secret))
	lim, _ := algorithms.NewRedis(b.Client, algorithms.MustKeyspace("servetest"), algorithms.SlidingLog, algorithms.Policy{Limit: 3, Window: time.Minute})
	key, _ := lim.Key(h.Identity(apiKey))
	if n, err := b.Client.Exists(context.Background(), key).Result(); err != nil || n != 1 {
		t.Errorf("the key %s (the HMAC of the API key) does not exist: %d, %v", key, n, err)
	}
	for i, l := range logs {
		if s := l.String(); strings.Contains(s, secret) || strings.Contains(s, apiKey) {
			t.Errorf("node %d logged the secret or the API key:\n%s", i, s)
		}
	}
}
