package faultproxy_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratelab/ratelab/internal/faultproxy"
	"github.com/ratelab/ratelab/internal/redistest"
)

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

func init() { redis.SetLogger(quiet{}) }

// through starts a proxy in front of b and a client of its own through it, with no
// retries, so that every fault shows as the error it is.
func through(t *testing.T, b redistest.Backend) (*faultproxy.Proxy, *redis.Client) {
	t.Helper()
	p, err := faultproxy.Listen("tcp", b.Addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	c := redis.NewClient(&redis.Options{Addr: p.Addr(), MaxRetries: -1, PoolSize: 2, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("PING through the proxy: %v", err)
	}
	return p, c
}

func pingWithin(c *redis.Client, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return c.Ping(ctx).Err()
}

func TestStallHoldsConnectionsOpen(t *testing.T) {
	for _, b := range redistest.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			p, c := through(t, b)
			open := p.Conns()
			p.Stall()
			if err := pingWithin(c, 50*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err) {
				t.Fatalf("PING while stalled: %v, want a timeout", err)
			}
			if p.Conns() == 0 || open == 0 {
				t.Fatalf("a stall closed the connections: %d open before, %d during", open, p.Conns())
			}
			if err := p.Heal(); err != nil {
				t.Fatal(err)
			}
			if err := pingWithin(c, 5*time.Second); err != nil {
				t.Fatalf("PING after the stall: %v", err)
			}
		})
	}
}

func TestDelayAddsToEachRoundTrip(t *testing.T) {
	for _, b := range redistest.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			p, c := through(t, b)
			const d = 30 * time.Millisecond
			p.Delay(d)
			start := time.Now()
			if err := pingWithin(c, 5*time.Second); err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took < d {
				t.Fatalf("a round trip with %s of latency took %s", d, took)
			}
			// Shorter than the latency, the round trip misses its budget.
			if err := pingWithin(c, d/3); err == nil {
				t.Fatalf("PING within %s succeeded although every round trip is %s longer", d/3, d)
			}
			if err := p.Heal(); err != nil {
				t.Fatal(err)
			}
			if err := pingWithin(c, 5*time.Second); err != nil {
				t.Fatalf("PING after the latency: %v", err)
			}
		})
	}
}

func TestDropResetsAndRefuses(t *testing.T) {
	for _, b := range redistest.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			p, c := through(t, b)
			if err := p.Drop(); err != nil {
				t.Fatal(err)
			}
			if err := pingWithin(c, 5*time.Second); err == nil || isTimeout(err) {
				t.Fatalf("PING on a dropped connection: %v, want a reset or refusal", err)
			}
			if _, err := net.Dial("tcp", p.Addr()); !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("a new connection while dropped: %v, want connection refused", err)
			}
			if err := p.Heal(); err != nil {
				t.Fatal(err)
			}
			if err := pingWithin(c, 5*time.Second); err != nil {
				t.Fatalf("PING after the drop: %v", err)
			}
		})
	}
}

func TestResetClosesEveryConnection(t *testing.T) {
	for _, b := range redistest.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			p, _ := through(t, b)
			raw, err := net.Dial("tcp", p.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			r := bufio.NewReader(raw)
			if _, err := raw.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
				t.Fatal(err)
			}
			if line, err := r.ReadString('\n'); err != nil || line != "+PONG\r\n" {
				t.Fatalf("PING on a raw connection: %q, %v", line, err)
			}
			p.Reset()
			if _, err := r.ReadString('\n'); err == nil {
				t.Fatal("a reset connection still reads")
			}
			// New connections are accepted as before.
			again, err := net.Dial("tcp", p.Addr())
			if err != nil {
				t.Fatalf("a new connection after a reset: %v", err)
			}
			_ = again.Close()
		})
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
