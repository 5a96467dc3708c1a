package redisconn

import (
	"errors"

	"github.com/redis/go-redis/v9"
)

// ErrClusterVia is returned by Upstream and Via for a cluster: its clients learn the
// masters' addresses from the cluster itself, so one proxy in front of a seed would
// not stand between them and Redis.
var ErrClusterVia = errors.New("a Redis Cluster cannot be reached through a fault proxy: its clients follow the addresses the cluster announces; use one redis-server (--redis redis://host:port) or the embedded Redis")

// Upstream is the network ("tcp" or "unix") and address of the one server c talks to.
func (c *Conn) Upstream() (network, addr string, err error) {
	cl, ok := c.Client.(*redis.Client)
	if !ok {
		return "", "", ErrClusterVia
	}
	o := cl.Options()
	network = o.Network
	if network == "" {
		network = "tcp"
	}
	return network, o.Addr, nil
}

// Via is a connection to the same server as c, with the same options, that dials
// addr (a TCP proxy in front of it) instead. Closing it closes its clients only: the
// server, embedded or not, stays c's.
func (c *Conn) Via(addr string) (*Conn, error) {
	cl, ok := c.Client.(*redis.Client)
	if !ok {
		return nil, ErrClusterVia
	}
	o := *cl.Options()
	o.Network, o.Addr = "tcp", addr
	client, probe := newClients(&o)
	return &Conn{Client: client, probe: probe, poolSize: c.poolSize, Backend: c.Backend,
		Embedded: c.Embedded, ChildProcess: c.ChildProcess}, nil
}
