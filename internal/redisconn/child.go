package redisconn

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// The embedded Redis in a process of its own. miniredis makes a fresh Lua state for
// every script call: at a load generator's rates that is hundreds of megabytes a
// second of garbage, which, in the generator's own heap, its collector must either
// collect (and delay sends) or keep (and grow). In a child process it is collected
// there, and the generator's heap stays its own.

// ChildCommand is the hidden ratelab subcommand that runs ServeEmbedded for a parent.
const ChildCommand = "embedded-redis"

// childStopTimeout is how long a child has to exit once told to, before it is killed.
const childStopTimeout = 5 * time.Second

// ServeEmbedded runs the embedded Redis for a parent process: it listens on a free
// loopback port, writes the address as one line to out, keeps the TTL clock moving
// with real time, and returns once in ends (the parent closed it, or died) or ctx is
// done.
func ServeEmbedded(ctx context.Context, in io.Reader, out io.Writer) error {
	// miniredis makes a fresh Lua state for every script call: a couple of hundred MB
	// of garbage a second at hammer's default rate, over a live heap of a few MB. With
	// the default GOGC the collector would run tens of times a second, taking CPU from
	// the checks it serves; this process collects when its heap reaches a fixed size
	// instead, which bounds its memory and makes collections rare.
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(childHeapLimit)
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return fmt.Errorf("embedded Redis: cannot listen on 127.0.0.1: %w", err)
	}
	defer m.Close()
	stop := make(chan struct{})
	defer close(stop)
	go age(m, stop)
	if _, err := fmt.Fprintln(out, m.Addr()); err != nil {
		return fmt.Errorf("embedded Redis: cannot tell the parent its address: %w", err)
	}
	ended := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, in)
		close(ended)
	}()
	select {
	case <-ended:
	case <-ctx.Done():
	}
	return nil
}

// childHeapLimit is the heap at which the embedded Redis's process collects.
const childHeapLimit = 64 << 20

// child is an embedded Redis's process: closing its stdin tells it to exit.
type child struct {
	cmd  *exec.Cmd
	in   io.Closer
	done chan struct{} // closed once the process has exited
	addr string
}

// openChild starts opts.EmbeddedCommand, reads the address it serves on, and
// connects to it.
func openChild(ctx context.Context, opts Options) (*Conn, error) {
	argv := opts.EmbeddedCommand
	cmd := exec.Command(argv[0], argv[1:]...)
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("embedded Redis: %w", err)
	}
	// A pipe of our own, not StdoutPipe: Wait, which runs beside the read, would close that.
	out, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("embedded Redis: %w", err)
	}
	cmd.Stdout = w
	err = cmd.Start()
	_ = w.Close()
	if err != nil {
		_ = out.Close()
		return nil, fmt.Errorf("embedded Redis: cannot start %s: %w; use --redis to name a Redis", argv[0], err)
	}
	ch := &child{cmd: cmd, in: in, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(ch.done)
	}()
	lines := make(chan string, 1)
	go func() {
		defer out.Close()
		line, _ := bufio.NewReader(out).ReadString('\n')
		lines <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, out)
	}()
	fail := func(why error) (*Conn, error) {
		ch.stop()
		return nil, fmt.Errorf("embedded Redis (%s): %w; use --redis to name a Redis", strings.Join(argv, " "), why)
	}
	select {
	case ch.addr = <-lines:
	case <-time.After(opts.DialTimeout):
		return fail(errors.New("no address in time"))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	if _, _, err := net.SplitHostPort(ch.addr); err != nil {
		return fail(fmt.Errorf("it answered %q, not an address", ch.addr))
	}
	client, probe := newClients(&redis.Options{Addr: ch.addr, PoolSize: opts.PoolSize, MinIdleConns: opts.MinIdleConns})
	c := &Conn{
		Client:       client,
		Backend:      "embedded",
		Embedded:     true,
		ChildProcess: true,
		probe:        probe,
		poolSize:     opts.PoolSize,
		child:        ch,
	}
	pctx, cancel := context.WithTimeout(ctx, opts.DialTimeout)
	defer cancel()
	if err := c.Client.Ping(pctx).Err(); err != nil {
		_ = c.Client.Close()
		_ = c.probe.Close()
		return fail(err)
	}
	return c, nil
}

// stop tells the child to exit and waits for it, killing it if it takes too long.
func (ch *child) stop() {
	_ = ch.in.Close()
	select {
	case <-ch.done:
	case <-time.After(childStopTimeout):
		_ = ch.cmd.Process.Kill()
		<-ch.done
	}
}
