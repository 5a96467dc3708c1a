package scenario

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// A node's connections. The pacer writes each request itself, at its intended time, on
// a free keep-alive connection; a reader goroutine per connection parses the answer
// (net/http's ReadResponse) and frees the connection. So a send is a write(2) from the
// pacer's thread, not a goroutine that the OS must first wake and run: the way an
// event-loop load generator (wrk, wrk2) sends, without its own HTTP parser.

// node is one target: where to connect and how its requests start.
type node struct {
	index int         // in HTTPTarget.nodes
	addr  string      // host:port to dial
	host  string      // the Host header
	path  string      // the base path, without a trailing slash
	tls   *tls.Config // nil for http
	free  chan *conn
}

// conn is one keep-alive connection to a node and its reader. Whoever holds it (the
// sender while it is free, the reader while a request is in flight) may change c; mu
// guards c against abort, which interrupts a read from outside.
type conn struct {
	t    *HTTPTarget
	n    *node
	mu   sync.Mutex
	c    net.Conn // nil while broken
	br   *bufio.Reader
	buf  []byte
	jobs chan job // the request in flight (at most one)
	// answers counts what this connection's requests came back with; whoever holds
	// the connection writes it.
	answers Answers
}

// job is a request written on a conn and waiting for its answer.
type job struct {
	identity string
	done     func(Status)
}

// dialTimeout bounds one connection attempt (loopback: an answer is immediate).
const dialTimeout = 3 * time.Second

func newNode(index int, u *url.URL, conns int) *node {
	n := &node{index: index, host: u.Host, path: trimSlash(u.EscapedPath()), free: make(chan *conn, conns)}
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	n.addr = net.JoinHostPort(u.Hostname(), port)
	if u.Scheme == "https" {
		n.tls = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	}
	return n
}

func trimSlash(p string) string {
	for len(p) > 0 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	return p
}

func (n *node) dial(ctx context.Context) (net.Conn, error) {
	d := net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	c, err := d.DialContext(ctx, "tcp", n.addr)
	if err != nil || n.tls == nil {
		return c, err
	}
	tc := tls.Client(c, n.tls)
	hctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		_ = c.Close()
		return nil, err
	}
	return tc, nil
}

// connect opens a connection, starts its reader and makes it free. A connection that
// cannot be opened is made free broken: the next request on it tries again.
func (t *HTTPTarget) connect(ctx context.Context, n *node) {
	cn := &conn{t: t, n: n, jobs: make(chan job, 1), buf: make([]byte, 0, 256)}
	if c, err := n.dial(ctx); err == nil {
		cn.set(c)
	}
	t.conns = append(t.conns, cn)
	t.readers.Go(cn.read)
	n.free <- cn
}

// start writes one request on cn, free and taken by the caller, and then hands cn to
// its reader, which owns it until it is free again. A broken connection is redialled
// first, and a failed write is tried once more on a new connection; when that fails
// too, the request fails at once (done is then called before start returns).
func (cn *conn) start(a Arrival, identity string, done func(Status)) {
	cn.buf = appendRequest(cn.buf[:0], cn.n, a.Product, identity)
	if err := cn.write(); err != nil {
		cn.close()
		cn.answers.failed(err)
		done(Failed)
		cn.n.free <- cn
		return
	}
	cn.jobs <- job{identity: identity, done: done}
}

// write writes cn.buf, on a new connection when cn has none or the write fails.
func (cn *conn) write() error {
	if cn.c != nil {
		if _, err := cn.c.Write(cn.buf); err == nil {
			return nil
		}
		cn.close()
	}
	c, err := cn.n.dial(context.Background())
	if err != nil {
		return err
	}
	cn.set(c)
	_, err = cn.c.Write(cn.buf)
	return err
}

// appendRequest appends GET {path}/products/{id} with the identity in X-Forwarded-For.
func appendRequest(b []byte, n *node, product int32, identity string) []byte {
	b = append(b, "GET "...)
	b = append(b, n.path...)
	b = append(b, "/products/"...)
	b = strconv.AppendInt(b, int64(product), 10)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, n.host...)
	b = append(b, "\r\nUser-Agent: ratelab-hammer\r\nX-Forwarded-For: "...)
	b = append(b, identity...)
	return append(b, "\r\n\r\n"...)
}

// read is a connection's reader: for each request written on it, it reads the answer,
// reports it, and frees the connection. It ends when the target is closed.
func (cn *conn) read() {
	for {
		var jb job
		select {
		case jb = <-cn.jobs:
		case <-cn.t.closed:
			// A request handed over as the target closed is answered too: cancelled.
			select {
			case jb := <-cn.jobs:
				jb.done(Cancelled)
			default:
			}
			cn.close()
			return
		}
		resp, err := cn.answer()
		switch {
		case err != nil && cn.t.closing.Load():
			jb.done(Cancelled)
			cn.close()
			cn.n.free <- cn
			continue
		case err != nil:
			cn.answers.failed(err)
			jb.done(Failed)
			cn.redial()
		default:
			st := cn.t.decide(cn.n, resp, jb.identity)
			cn.answers.answered(resp, st)
			jb.done(st)
			if resp.Close {
				cn.redial()
			}
		}
		cn.n.free <- cn
	}
}

// answer reads the answer to the request in cn.buf. A server that closed the idle
// connection before the request reached it (an idle timeout) has not seen it, so the
// request is sent once more on a new connection, from here: it goes out late, and its
// latency, counted from the intended time, says so. Interim answers (1xx) are skipped.
func (cn *conn) answer() (*http.Response, error) {
	for retried := false; ; retried = true {
		err := cn.c.SetReadDeadline(time.Now().Add(cn.t.timeout))
		if err == nil && cn.t.closing.Load() {
			err = errClosed // aborted while the request was being written
		}
		if err == nil {
			_, err = cn.br.Peek(1)
		}
		if err != nil && !retried && !cn.t.closing.Load() && closedUnanswered(err) {
			cn.close()
			if err = cn.write(); err == nil {
				continue
			}
		}
		if err != nil {
			return nil, err
		}
		resp, err := http.ReadResponse(cn.br, nil)
		for err == nil && resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			resp, err = http.ReadResponse(cn.br, nil)
		}
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
		return resp, err
	}
}

// closedUnanswered reports a connection the server closed before answering at all.
func closedUnanswered(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func (cn *conn) set(c net.Conn) {
	cn.mu.Lock()
	cn.c, cn.br = c, bufio.NewReaderSize(c, 4096)
	cn.mu.Unlock()
}

func (cn *conn) close() {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.c != nil {
		_ = cn.c.Close()
		cn.c, cn.br = nil, nil
	}
}

// abort makes a read in progress on cn fail now.
func (cn *conn) abort() {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.c != nil {
		_ = cn.c.SetReadDeadline(time.Unix(1, 0))
	}
}

// redial replaces a connection that failed or was closed by the server; when that
// fails it stays broken and the next request on it tries again.
func (cn *conn) redial() {
	cn.close()
	if cn.t.closing.Load() {
		return
	}
	if c, err := cn.n.dial(context.Background()); err == nil {
		cn.set(c)
	}
}

// errClosed is what Start returns once the target is closed.
var errClosed = errors.New("the target is closed")
