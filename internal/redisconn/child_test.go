package redisconn_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ratelab/ratelab/internal/redisconn"
)

// childEnv makes this test binary, run again, the embedded Redis's child process
// instead of running the tests.
const childEnv = "REDISCONN_TEST_EMBEDDED_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "serve":
		if err := redisconn.ServeEmbedded(context.Background(), os.Stdin, os.Stdout); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	case "babble":
		os.Stdout.WriteString("hello\n")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestOpenEmbeddedInAChildProcess(t *testing.T) {
	t.Setenv(childEnv, "serve")
	ctx := context.Background()
	c, err := redisconn.Open(ctx, "", redisconn.Options{EmbeddedCommand: []string{os.Args[0]}})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Embedded || !c.ChildProcess || c.Backend != "embedded" || c.Addr() == "" {
		t.Fatalf("Open with EmbeddedCommand = %+v; want the embedded backend in a child process", c)
	}
	roundTrip(t, c)
	if err := c.Client.Set(ctx, "short", "v", 150*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for c.Client.Exists(ctx, "short").Val() == 1 {
		if time.Now().After(deadline) {
			t.Fatal("a key with a 150ms TTL still exists after 5s: the child does not age keys")
		}
		time.Sleep(50 * time.Millisecond)
	}
	addr := c.Addr()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// Close ended the child: its Redis is gone.
	again, err := redisconn.Open(ctx, "redis://"+addr, redisconn.Options{DialTimeout: time.Second})
	if err == nil {
		_ = again.Close()
		t.Fatalf("the child's Redis at %s still answers after Close", addr)
	}
}

func TestOpenEmbeddedChildThatFails(t *testing.T) {
	ctx := context.Background()
	if _, err := redisconn.Open(ctx, "", redisconn.Options{EmbeddedCommand: []string{"/nonexistent/ratelab"}}); err == nil ||
		!strings.Contains(err.Error(), "cannot start") || !strings.Contains(err.Error(), "--redis") {
		t.Errorf("a child that cannot start: %v", err)
	}
	t.Setenv(childEnv, "babble")
	if _, err := redisconn.Open(ctx, "", redisconn.Options{EmbeddedCommand: []string{os.Args[0]}}); err == nil ||
		!strings.Contains(err.Error(), `"hello", not an address`) {
		t.Errorf("a child that answers no address: %v", err)
	}
}
