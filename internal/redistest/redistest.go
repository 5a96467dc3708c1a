// Package redistest starts real Redis servers for tests: a standalone redis-server or
// a three-master Redis Cluster on free loopback ports, in a temporary directory, killed
// when the test ends. It also starts the embedded (miniredis) backend, so one suite
// can run against each. Without redis-server on PATH, tests that need it are skipped,
// except under CI=true, where that is a failure: CI must never pass by skipping.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Backend is one Redis a suite runs against.
type Backend struct {
	// Name is "redis-server", "cluster" or "embedded".
	Name string
	// Client talks to it.
	Client redis.UniversalClient
	// Addrs are the server addresses (one, or the cluster's masters).
	Addrs []string
	// Mini is the embedded server, nil for a real one.
	Mini *miniredis.Miniredis
	// Server is the real standalone server, nil otherwise; tests may stop and restart it.
	Server *Server
}

// URL is a --redis URL for the backend (empty for the embedded one, which has none
// outside this process; use Addrs with redis:// for it where a URL is needed).
func (b Backend) URL() string {
	switch {
	case b.Mini != nil:
		return "redis://" + b.Mini.Addr()
	case len(b.Addrs) == 1:
		return "redis://" + b.Addrs[0]
	}
	return "redis://" + strings.Join(b.Addrs, ",")
}

// All returns the backends a suite should run against: a real redis-server and the
// embedded one. The real one is skipped (or fails under CI=true) as RequireServer says.
func All(t testing.TB) []Backend {
	t.Helper()
	backends := []Backend{Embedded(t)}
	if serverPath(t) != "" {
		backends = append([]Backend{Standalone(t)}, backends...)
	}
	return backends
}

// Embedded starts a miniredis on a free port.
func Embedded(t testing.TB) Backend {
	t.Helper()
	m := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	return Backend{Name: "embedded", Client: c, Addrs: []string{m.Addr()}, Mini: m}
}

// serverPath finds redis-server, or says why not: skip locally, fail under CI=true.
func serverPath(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("redis-server")
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("redis-server is not on PATH, and CI=true requires it: install it (apt-get install redis-server)")
	}
	t.Log("redis-server is not on PATH: the real-Redis part of this test is skipped (install redis-server to run it)")
	return ""
}

// RequireServer skips the test (or fails it under CI=true) when redis-server is missing.
func RequireServer(t testing.TB) {
	t.Helper()
	if serverPath(t) == "" {
		t.Skip("redis-server is not on PATH")
	}
}

// Server is one redis-server process.
type Server struct {
	Addr string
	Port int
	dir  string
	args []string
	cmd  *exec.Cmd
	t    testing.TB
}

// Standalone starts a redis-server on a free loopback port and returns it as a backend.
func Standalone(t testing.TB) Backend {
	t.Helper()
	RequireServer(t)
	s := StartServer(t)
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	t.Cleanup(func() { _ = c.Close() })
	return Backend{Name: "redis-server", Client: c, Addrs: []string{s.Addr}, Server: s}
}

// StartServer starts one redis-server with extra config arguments (e.g. "--cluster-enabled", "yes").
func StartServer(t testing.TB, extra ...string) *Server {
	t.Helper()
	RequireServer(t)
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port := FreePort(t)
		s := &Server{Port: port, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: t.TempDir(), t: t}
		s.args = append([]string{
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", s.dir,
			"--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "no",
			"--logfile", filepath.Join(s.dir, "redis.log"),
		}, extra...)
		if lastErr = s.Start(); lastErr == nil {
			t.Cleanup(s.Stop)
			return s
		}
	}
	t.Fatalf("redis-server did not start: %v", lastErr)
	return nil
}

// Start (re)starts the server process on its port and waits until it answers PING.
func (s *Server) Start() error {
	cmd := exec.Command("redis-server", s.args...)
	cmd.Dir = s.dir
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd = cmd
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			s.cmd = nil
			return fmt.Errorf("redis-server on port %d exited: %s", s.Port, lastLines(string(log), 3))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		// A server with a password answers NOAUTH: it is up.
		if err == nil || strings.HasPrefix(err.Error(), "NOAUTH") {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	return fmt.Errorf("redis-server on port %d did not answer PING within 10s", s.Port)
}

// Suspend stops the server process with SIGSTOP: its connections stay open and new
// ones are still accepted by the kernel, but nothing is answered, as in a stall.
// Resume ends it; so does Stop. The test fails if the signal cannot be sent.
func (s *Server) Suspend() {
	s.t.Helper()
	s.signal(syscall.SIGSTOP)
}

// Resume continues a suspended server with SIGCONT.
func (s *Server) Resume() {
	s.t.Helper()
	s.signal(syscall.SIGCONT)
}

func (s *Server) signal(sig syscall.Signal) {
	s.t.Helper()
	if s.cmd == nil || s.cmd.Process == nil {
		s.t.Fatalf("redis-server on port %d is not running: cannot send it %v", s.Port, sig)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("sending %v to redis-server on port %d: %v", sig, s.Port, err)
	}
}

// Stop kills the server (also a suspended one) and waits for it to exit.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	for i := 0; i < 200; i++ {
		if conn, err := net.DialTimeout("tcp", s.Addr, 50*time.Millisecond); err != nil {
			break
		} else {
			_ = conn.Close()
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.cmd = nil
}

// Cluster starts a three-master Redis Cluster (no replicas) and returns it as a backend.
func Cluster(t testing.TB) Backend {
	t.Helper()
	RequireServer(t)
	const masters = 3
	servers := make([]*Server, masters)
	addrs := make([]string, masters)
	for i := range servers {
		servers[i] = StartServer(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "5000")
		addrs[i] = servers[i].Addr
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const slots = 16384
	for i, s := range servers {
		c := redis.NewClient(&redis.Options{Addr: s.Addr})
		lo, hi := i*slots/masters, (i+1)*slots/masters-1
		if err := c.ClusterAddSlotsRange(ctx, lo, hi).Err(); err != nil {
			t.Fatalf("cluster: adding slots %d-%d to %s: %v", lo, hi, s.Addr, err)
		}
		if i > 0 {
			if err := c.ClusterMeet(ctx, "127.0.0.1", strconv.Itoa(servers[0].Port)).Err(); err != nil {
				t.Fatalf("cluster: %s meeting %s: %v", s.Addr, servers[0].Addr, err)
			}
		}
		_ = c.Close()
	}
	for _, s := range servers {
		c := redis.NewClient(&redis.Options{Addr: s.Addr})
		for {
			info, err := c.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_known_nodes:3") {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("cluster: %s not ok within 30s: %v %s", s.Addr, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = c.Close()
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { _ = cc.Close() })
	// Every master must see every slot covered before the client's first routed call.
	for {
		err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return c.Ping(ctx).Err() })
		shards, serr := cc.ClusterShards(ctx).Result()
		if err == nil && serr == nil && len(shards) == masters {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("cluster: client not ready within 30s: %v %v", err, serr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return Backend{Name: "cluster", Client: cc, Addrs: addrs}
}

// FreePort returns a loopback TCP port that was free a moment ago, and whose cluster
// bus port (port+10000) exists.
func FreePort(t testing.TB) int {
	t.Helper()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("finding a free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		// A cluster node also listens on port+10000 for its bus.
		if port+10000 < 65536 {
			return port
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
