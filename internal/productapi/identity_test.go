package productapi_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/productapi"
	"github.com/ratelab/ratelab/internal/redistest"
)

// TestIPv6Aggregation: IPv6 clients are limited per /64 by default: two addresses in
// one /64 share a limit (the headers show it, the key names the /64), addresses in
// different /64s do not, a /128 keeps every address apart, and IPv4-mapped addresses
// stay IPv4.
func TestIPv6Aggregation(t *testing.T) {
	for _, b := range redistest.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			p := algorithms.Policy{Limit: 2, Window: time.Hour}
			prefix := "ipv6"
			ks := algorithms.MustKeyspace(prefix)
			exists := func(identity string) bool {
				t.Helper()
				n, err := b.Client.Exists(context.Background(), ks.Limiter(algorithms.FixedWindow, p, identity)).Result()
				if err != nil {
					t.Fatal(err)
				}
				return n == 1
			}
			h := newAPI(t, productapi.Config{
				Limiter:        newLimiter(t, b.Client, prefix, algorithms.FixedWindow, p),
				TrustedProxies: mustPrefixes(t, "10.0.0.0/8"),
			}).Handler()
			statuses := func(h http.Handler, remotes ...string) string {
				var out []string
				for _, r := range remotes {
					w := do(h, "GET", "/products/1", r)
					out = append(out, fmt.Sprintf("%d/%s", w.Code, w.Header().Get("X-RateLimit-Remaining")))
				}
				return strings.Join(out, " ")
			}

			// One /64: the second address sees what the first left, the third request is denied.
			if got := statuses(h, "[2001:db8::1]:1000", "[2001:db8::ffff:2]:1000", "[2001:db8:0:0:8000::3]:1000"); got != "200/1 200/0 429/0" {
				t.Errorf("three addresses of 2001:db8::/64: %s; want 200/1 200/0 429/0 (one shared limit)", got)
			}
			if !exists("2001:db8::/64") || exists("2001:db8::1") {
				t.Errorf("the limiter key is not named by the /64")
			}
			// Another /64 has a limit of its own, also through a trusted proxy.
			if got := statuses(h, "[2001:db8:0:1::1]:1000"); got != "200/1" {
				t.Errorf("an address of 2001:db8:0:1::/64: %s; want 200/1 (a limit of its own)", got)
			}
			if w := do(h, "GET", "/products/1", "10.0.0.1:1000", "X-Forwarded-For: 2001:db8:0:1::99"); w.Code != http.StatusOK || w.Header().Get("X-RateLimit-Remaining") != "0" {
				t.Errorf("2001:db8:0:1::99 through a trusted proxy: %d remaining %q; want 200 remaining 0 (the same /64)", w.Code, w.Header().Get("X-RateLimit-Remaining"))
			}
			// IPv4-mapped IPv6 is the IPv4 client, never a /64 of ::ffff:0:0.
			if got := statuses(h, "[::ffff:192.0.2.7]:1000", "192.0.2.7:1000", "[::ffff:192.0.2.8]:1000"); got != "200/1 200/0 200/1" {
				t.Errorf("::ffff:192.0.2.7, 192.0.2.7, ::ffff:192.0.2.8: %s; want 200/1 200/0 200/1 (per IPv4 address)", got)
			}
			if !exists("192.0.2.7") || !exists("192.0.2.8") {
				t.Errorf("IPv4-mapped clients are not keyed by their IPv4 address")
			}

			// At /128 every address is its own client.
			h128 := newAPI(t, productapi.Config{
				Limiter:    newLimiter(t, b.Client, prefix, algorithms.FixedWindow, p),
				IPv6Prefix: 128,
			}).Handler()
			if got := statuses(h128, "[2001:db8:1::1]:1", "[2001:db8:1::1]:2", "[2001:db8:1::2]:1"); got != "200/1 200/0 200/1" {
				t.Errorf("/128: %s; want 200/1 200/0 200/1 (one limit per address)", got)
			}
			if !exists("2001:db8:1::1") || !exists("2001:db8:1::2") {
				t.Errorf("/128: the limiter keys are not named by the address")
			}
			// At /48 the site shares one limit.
			h48 := newAPI(t, productapi.Config{
				Limiter:    newLimiter(t, b.Client, prefix, algorithms.FixedWindow, p),
				IPv6Prefix: 48,
			}).Handler()
			if got := statuses(h48, "[2001:db8:2:1::1]:1", "[2001:db8:2:ffff::1]:1", "[2001:db8:3::1]:1"); got != "200/1 200/0 200/1" {
				t.Errorf("/48: %s; want 200/1 200/0 200/1", got)
			}
		})
	}
}

// TestConfigIdentity: what cannot identify a client is refused when the API is built.
func TestConfigIdentity(t *testing.T) {
	t.Parallel()
	hasher, err := algorithms.NewAPIKeyHasher([]byte("a server secret of some length"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cfg     productapi.Config
		wantErr string
	}{
		{"default prefix", productapi.Config{}, ""},
		{"/48", productapi.Config{IPv6Prefix: 48}, ""},
		{"/128", productapi.Config{IPv6Prefix: 128}, ""},
		{"/47", productapi.Config{IPv6Prefix: 47}, "choose 48 to 128"},
		{"/129", productapi.Config{IPv6Prefix: 129}, "choose 48 to 128"},
		{"negative", productapi.Config{IPv6Prefix: -1}, "choose 48 to 128"},
		{"api-key without a hasher", productapi.Config{KeyBy: productapi.KeyByAPIKey}, "server secret"},
		{"api-key with a hasher", productapi.Config{KeyBy: productapi.KeyByAPIKey, APIKeys: hasher}, ""},
	}
	for _, tt := range tests {
		tt.cfg.Backend = productapi.NewBackend(0, 0)
		a, err := productapi.New(tt.cfg)
		if err == nil {
			_ = a.Close()
		}
		if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%s: New = %v; want error %q", tt.name, err, tt.wantErr)
		}
	}
}

// TestAPIKeyIdentity: one API key is one client on every node that shares the
// secret, another client under another secret, and its key name is an HMAC, not the
// key's bare SHA-256.
func TestAPIKeyIdentity(t *testing.T) {
	for _, b := range redistest.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			p := algorithms.Policy{Limit: 1, Window: time.Hour}
			const prefix = "apikey"
			node := func(secret string) http.Handler {
				hasher, err := algorithms.NewAPIKeyHasher([]byte(secret))
				if err != nil {
					t.Fatal(err)
				}
				return newAPI(t, productapi.Config{
					Limiter: newLimiter(t, b.Client, prefix, algorithms.GCRA, p),
					KeyBy:   productapi.KeyByAPIKey, APIKeys: hasher,
				}).Handler()
			}
			const secret = "0123456789abcdef0123456789abcdef"
			a, c, other := node(secret), node(secret), node("another secret, as long as needed")
			key := "X-API-Key: abc"
			if w := do(a, "GET", "/products/1", "192.0.2.1:1", key); w.Code != http.StatusOK {
				t.Fatalf("first request: %d", w.Code)
			}
			if w := do(c, "GET", "/products/1", "192.0.2.2:1", key); w.Code != http.StatusTooManyRequests {
				t.Errorf("the same key on a node with the same secret: %d; want 429 (one client)", w.Code)
			}
			if w := do(other, "GET", "/products/1", "192.0.2.3:1", key); w.Code != http.StatusOK {
				t.Errorf("the same key on a node with another secret: %d; want 200 (another identity)", w.Code)
			}
			keys, err := b.Client.Keys(context.Background(), prefix+":rl:*").Result()
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256([]byte("abc"))
			bare := hex.EncodeToString(sum[:16])
			if len(keys) != 2 {
				t.Errorf("limiter keys %q; want two (one per secret)", keys)
			}
			for _, k := range keys {
				if strings.Contains(k, bare) || strings.Contains(k, "abc}") {
					t.Errorf("key %q holds the API key or its bare SHA-256", k)
				}
			}
		})
	}
}
