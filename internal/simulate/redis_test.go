package simulate

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/redistest"
	"github.com/ratelab/ratelab/internal/trace"
)

// virtualTrace is a generated combined log of 12,000 requests from 150 clients: whole
// seconds, so many decisions share a microsecond, and a scraper over every limit.
func virtualTrace(t *testing.T) []trace.Request {
	t.Helper()
	var log bytes.Buffer
	if err := trace.Generate(&log, trace.GenConfig{Seed: 3, Lines: 12_000, Clients: 150}); err != nil {
		t.Fatal(err)
	}
	r, err := trace.NewReader(&log, trace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out []trace.Request
	for {
		req, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, req)
	}
	clients := map[string]bool{}
	for _, req := range out {
		clients[req.Client] = true
	}
	if len(out) < 10_000 || len(clients) < 100 {
		t.Fatalf("the trace has %d requests from %d clients; the test needs 10,000 from 100", len(out), len(clients))
	}
	return out
}

// TestVirtualEqualsRedis is simulate's promise: its decisions are the decisions the
// Lua scripts make on a real redis-server at the same virtual times, request for
// request and field for field, for every algorithm, with one shared limit and with
// per-node limiters behind a round robin (a keyspace per node). The script calls are
// pipelined, a thousand per round trip.
func TestVirtualEqualsRedis(t *testing.T) {
	reqs := virtualTrace(t)
	b := redistest.Standalone(t)
	policies := []algorithms.Policy{
		{Limit: 20, Window: time.Minute, Burst: 30},
		{Limit: 3, Window: time.Second},
	}
	for _, nodes := range []int{1, 3} {
		t.Run(fmt.Sprintf("nodes=%d", nodes), func(t *testing.T) {
			ctx := context.Background()
			type decided struct {
				client string
				node   int
				d      algorithms.Decision
			}
			var got [][]decided
			var e *Engine
			cfg := Config{Algorithms: algorithms.Names(), Policies: policies, Nodes: nodes,
				OnDecision: func(lane int, client int32, node int, d algorithms.Decision) {
					for len(got) <= lane {
						got = append(got, nil)
					}
					got[lane] = append(got[lane], decided{e.names[client], node, d})
				}}
			var err error
			if e, err = New(cfg); err != nil {
				t.Fatal(err)
			}
			for _, r := range reqs {
				e.Add(r.Time, r.Client)
			}
			lane := 0
			for _, p := range policies {
				for _, name := range algorithms.Names() {
					limiters := make([]*algorithms.Redis, nodes)
					for n := range limiters {
						keys := algorithms.MustKeyspace(fmt.Sprintf("virt%d-%d", nodes, n))
						if limiters[n], err = algorithms.NewRedis(b.Client, keys, name, p); err != nil {
							t.Fatal(err)
						}
						if err := limiters[n].LoadScript(ctx); err != nil {
							t.Fatal(err)
						}
					}
					decisions := got[lane]
					denied := 0
					for from := 0; from < len(decisions); from += 1000 {
						batch := decisions[from:min(from+1000, len(decisions))]
						pipe := b.Client.Pipeline()
						reads := make([]func() (algorithms.Decision, error), len(batch))
						for i, dd := range batch {
							if reads[i], err = limiters[dd.node].QueueAllowAt(ctx, pipe, dd.client, time.UnixMicro(dd.d.TimeMicros)); err != nil {
								t.Fatal(err)
							}
						}
						if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
							t.Fatal(err)
						}
						for i, read := range reads {
							real, err := read()
							if err != nil {
								t.Fatal(err)
							}
							if real != batch[i].d {
								t.Fatalf("%s %s, request %d of %s at %d (node %d): Redis %+v, simulate %+v",
									name, p, from+i, batch[i].client, batch[i].d.TimeMicros, batch[i].node, real, batch[i].d)
							}
							if !real.Allowed {
								denied++
							}
						}
					}
					if denied == 0 || len(decisions) != len(reqs) {
						t.Errorf("%s %s: %d decisions, %d denied; the trace must make every algorithm deny", name, p, len(decisions), denied)
					}
					lane++
				}
			}
		})
	}
}
