package redisconn

import (
	"context"
	_ "embed"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

//go:embed probe.lua
var probeLua string

var probeScript = redis.NewScript(probeLua)

// ProbeTTL is how long a probe's key lives.
const ProbeTTL = 10 * time.Second

// Probe runs a limiter-shaped write, a script that sets key with a short TTL, on a
// connection of its own (never waiting behind this process's load), bounded by ctx.
// Its error says why Redis cannot serve the limiter (Diagnose it); nil means Redis
// answered the write.
func (c *Conn) Probe(ctx context.Context, key string) error {
	client := c.probe
	if client == nil {
		client = c.Client
	}
	return probeScript.Run(ctx, client, []string{key}, strconv.FormatInt(time.Now().UnixMilli(), 10), ProbeTTL.Milliseconds()).Err()
}
