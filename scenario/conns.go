package scenario

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"net/url"
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
	path  string      // the base path, without a trailing slash
	head  []byte      // the header lines every request carries: Host, User-Agent, extras
	tls   *tls.Config // nil for http
	// pools hold the free connections: one for every identity, or with IdentitySource
	// one per identity (indexed like the identities), then the warm-up's.
	pools []*pool
}

// pool is a set of a node's connections that any of its requests may take: each
// bound to local, the source address, when that is set.
type pool struct {
	local *net.TCPAddr
	free  chan *conn
}

// conn is one keep-alive connection to a node and its reader. Whoever holds it (the
// sender while it is free, the reader while a request is in flight) may change c; mu
// guards c against abort, which interrupts a read from outside.
type conn struct {
	t    *HTTPTarget
	n    *node
	p    *pool // the pool it is freed to
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

func newNode(index int, u *url.URL, headers []Header) *node {
	n := &node{index: index, path: trimSlash(u.EscapedPath())}
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
	host, agent := u.Host, "ratelab-hammer"
	var extra []byte
	for _, h := range headers {
		switch textproto.CanonicalMIMEHeaderKey(h.Name) {
		case "Host":
			host = h.Value
		case "User-Agent":
			agent = h.Value
		default:
			extra = append(append(append(append(extra, h.Name...), ": "...), h.Value...), "\r\n"...)
		}
	}
	n.head = append([]byte("Host: "+host+"\r\nUser-Agent: "+agent+"\r\n"), extra...)
	return n
}

// addPool adds a pool of up to conns connections bound to local (nil: any address).
func (n *node) addPool(local *net.TCPAddr, conns int) *pool {
	p := &pool{local: local, free: make(chan *conn, conns)}
	n.pools = append(n.pools, p)
	return p
}

// sourceAddr is the local address of an identity's connections with IdentitySource.
func sourceAddr(identity string) *net.TCPAddr {
	return &net.TCPAddr{IP: net.ParseIP(identity)}
}

// reachesIPv4 reports a target that a connection from a 127.x.y.z address can reach:
// an IPv4 loopback address, or localhost (which the dialer then resolves to one).
func reachesIPv4(u *url.URL) bool {
	if u.Hostname() == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(u.Hostname())
	return err == nil && a.Unmap().Is4()
}

// probeSource checks that this machine can send from identity's address, which
// Linux allows for all of 127.0.0.0/8 and most other systems only for 127.0.0.1.
func probeSource(identity string) error {
	ln, err := net.ListenTCP("tcp4", sourceAddr(identity))
	if err != nil {
		return fmt.Errorf("cannot send from %s (%w): source identities need the whole 127.0.0.0/8 on the loopback interface, as Linux has; "+
			"elsewhere add the addresses to it or send identities in X-Forwarded-For", identity, err)
	}
	return ln.Close()
}

func trimSlash(p string) string {
	for len(p) > 0 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	return p
}

func (n *node) dial(ctx context.Context, local *net.TCPAddr) (net.Conn, error) {
	d := net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	if local != nil {
		d.LocalAddr = local
	}
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

// connect opens a connection to n into its pool p, starts its reader and makes it
// free. A connection that cannot be opened is made free broken: the next request on
// it tries again.
func (t *HTTPTarget) connect(ctx context.Context, n *node, p *pool) {
	cn := &conn{t: t, n: n, p: p, jobs: make(chan job, 1), buf: make([]byte, 0, 256)}
	if c, err := n.dial(ctx, p.local); err == nil {
		cn.set(c)
	}
	t.conns = append(t.conns, cn)
	t.readers.Go(cn.read)
	p.free <- cn
}

// start writes one request on cn, free and taken by the caller, and then hands cn to
// its reader, which owns it until it is free again. A broken connection is redialled
// first, and a failed write is tried once more on a new connection; when that fails
// too, the request fails at once (done is then called before start returns).
func (cn *conn) start(a Arrival, identity string, own []byte, done func(Status)) {
	cn.buf = cn.t.appendRequest(cn.buf[:0], cn.n, a.Product, identity, own)
	if err := cn.write(); err != nil {
		cn.close()
		cn.answers.failed(err)
		done(Failed)
		cn.p.free <- cn
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
	c, err := cn.n.dial(context.Background(), cn.p.local)
	if err != nil {
		return err
	}
	cn.set(c)
	_, err = cn.c.Write(cn.buf)
	return err
}

// appendRequest appends GET {base path}{path} with the node's header lines, the
// identity's own (own), and, unless identities go as source addresses, the identity
// in X-Forwarded-For.
func (t *HTTPTarget) appendRequest(b []byte, n *node, product int32, identity string, own []byte) []byte {
	b = append(b, "GET "...)
	b = append(b, n.path...)
	b = t.path.append(b, product)
	b = append(b, " HTTP/1.1\r\n"...)
	b = append(b, n.head...)
	b = append(b, own...)
	if !t.bySource {
		b = append(b, "X-Forwarded-For: "...)
		b = append(b, identity...)
		b = append(b, "\r\n"...)
	}
	return append(b, "\r\n"...)
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
			cn.p.free <- cn
			continue
		case err != nil:
			cn.answers.failed(err)
			jb.done(Failed)
			cn.redial()
		default:
			st, outcome := cn.t.decide(cn.n, resp, jb.identity)
			cn.answers.answered(resp.StatusCode, st, outcome)
			jb.done(st)
			if resp.Close {
				cn.redial()
			}
		}
		cn.p.free <- cn
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
	if c, err := cn.n.dial(context.Background(), cn.p.local); err == nil {
		cn.set(c)
	}
}

// errClosed is what Start returns once the target is closed.
var errClosed = errors.New("the target is closed")
