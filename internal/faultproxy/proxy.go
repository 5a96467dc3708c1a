// Package faultproxy is a small TCP proxy that injects faults between ratelab's nodes
// and Redis: it stalls (stops forwarding while connections stay open), adds latency to
// every round trip, drops (resets every connection and refuses new ones) and resets
// connections on demand. Each fault starts and ends when its method is called, so a
// caller (hammer's fault schedule, a test) knows exactly when it held.
package faultproxy

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Proxy forwards every connection made to Addr to the upstream, byte for byte, and
// applies the faults in force. It is safe for concurrent use.
type Proxy struct {
	network, upstream string
	addr              string

	mu      sync.Mutex
	ln      net.Listener
	links   map[*link]struct{}
	stalled bool
	latency time.Duration
	dropped bool
	closed  bool
	// changed is closed, and replaced, whenever a fault starts or ends, so that pumps
	// waiting on one fault look again.
	changed chan struct{}
	wg      sync.WaitGroup
}

// Listen starts a proxy on a free port of 127.0.0.1 in front of upstream (network
// "tcp" or "unix", as net.Dial takes them).
func Listen(network, upstream string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fault proxy: cannot listen on 127.0.0.1: %w", err)
	}
	p := &Proxy{network: network, upstream: upstream, addr: ln.Addr().String(), ln: ln,
		links: map[*link]struct{}{}, changed: make(chan struct{})}
	p.wg.Add(1)
	go p.accept(ln)
	return p, nil
}

// Addr is the proxy's address (host:port): point the client there.
func (p *Proxy) Addr() string { return p.addr }

// Conns counts the connections the proxy forwards now.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.links)
}

// Stall stops forwarding in both directions until Heal: connections stay open, bytes
// wait (as they would in the kernel's buffers of a Redis that stopped running).
func (p *Proxy) Stall() { p.set(func() { p.stalled = true }) }

// Delay makes every round trip d longer until Heal: each chunk a client writes is
// forwarded d after it arrived.
func (p *Proxy) Delay(d time.Duration) { p.set(func() { p.latency = d }) }

// Drop resets every connection and refuses new ones (the port is closed) until Heal.
func (p *Proxy) Drop() error {
	p.mu.Lock()
	if p.closed || p.dropped {
		p.mu.Unlock()
		return nil
	}
	p.dropped = true
	err := p.ln.Close()
	p.mu.Unlock()
	p.Reset()
	if err != nil {
		return fmt.Errorf("fault proxy: closing %s: %w", p.addr, err)
	}
	return nil
}

// Reset resets every connection now (TCP RST, as a restarted server's peer sees);
// new connections are accepted as before.
func (p *Proxy) Reset() {
	p.mu.Lock()
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	p.mu.Unlock()
	for _, l := range links {
		l.reset()
	}
}

// Heal ends every fault: forwarding resumes without added latency and, after a drop,
// the proxy listens again on the same address.
func (p *Proxy) Heal() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.stalled, p.latency = false, 0
	close(p.changed)
	p.changed = make(chan struct{})
	if !p.dropped {
		return nil
	}
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return fmt.Errorf("fault proxy: cannot listen on %s again after a drop: %w", p.addr, err)
	}
	p.dropped, p.ln = false, ln
	p.wg.Add(1)
	go p.accept(ln)
	return nil
}

// Close stops the proxy: its listener and every connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.changed)
	p.changed = make(chan struct{})
	var err error
	if !p.dropped {
		err = p.ln.Close()
	}
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	p.mu.Unlock()
	for _, l := range links {
		l.close()
	}
	p.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

func (p *Proxy) set(change func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	change()
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *Proxy) accept(ln net.Listener) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve dials the upstream for one client connection and forwards both ways.
func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	server, err := net.DialTimeout(p.network, p.upstream, 5*time.Second)
	if err != nil {
		_ = client.Close()
		return
	}
	l := &link{client: client, server: server, done: make(chan struct{})}
	p.mu.Lock()
	if p.closed || p.dropped {
		p.mu.Unlock()
		l.reset()
		return
	}
	p.links[l] = struct{}{}
	p.mu.Unlock()
	var pumps sync.WaitGroup
	pumps.Go(func() { p.pump(l, server, client, true) })
	pumps.Go(func() { p.pump(l, client, server, false) })
	pumps.Wait()
	l.close()
	p.mu.Lock()
	delete(p.links, l)
	p.mu.Unlock()
}

// pump copies from src to dst, holding each chunk while the proxy stalls and, toward
// the server (delayed), until the latency in force has passed since it arrived.
func (p *Proxy) pump(l *link, dst, src net.Conn, delayed bool) {
	defer l.close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.hold(time.Now(), delayed, l.done) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// hold waits until a chunk that arrived at may go on: no stall, and its latency
// passed. It reports false when the link closed first.
func (p *Proxy) hold(at time.Time, delayed bool, done <-chan struct{}) bool {
	for {
		p.mu.Lock()
		stalled, latency, changed, closed := p.stalled, p.latency, p.changed, p.closed
		p.mu.Unlock()
		if closed {
			return false
		}
		if !stalled {
			if !delayed {
				return true
			}
			wait := time.Until(at.Add(latency))
			if wait <= 0 {
				return true
			}
			t := time.NewTimer(wait)
			select {
			case <-t.C:
				return true
			case <-changed:
				t.Stop()
			case <-done:
				t.Stop()
				return false
			}
			continue
		}
		select {
		case <-changed:
		case <-done:
			return false
		}
	}
}

// link is one forwarded connection: the client's and the upstream's ends.
type link struct {
	client, server net.Conn
	once           sync.Once
	done           chan struct{}
}

// reset closes both ends with a TCP RST (SO_LINGER 0).
func (l *link) reset() {
	for _, c := range []net.Conn{l.client, l.server} {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
	}
	l.close()
}

func (l *link) close() {
	l.once.Do(func() {
		close(l.done)
		_ = l.client.Close()
		_ = l.server.Close()
	})
}
