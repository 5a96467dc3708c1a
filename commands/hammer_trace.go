package commands

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/ratelab/ratelab/internal/report"
	"github.com/ratelab/ratelab/internal/trace"
	"github.com/ratelab/ratelab/scenario"
)

// PatternTrace is the report's pattern of a run that replays a --trace.
const PatternTrace = "trace"

// MaxHammerSpeed bounds --speed.
const MaxHammerSpeed = 10_000

// validateTrace checks the --trace options of hammer.
func (o HammerOptions) validateTrace() error {
	if o.Trace == "" {
		if o.Speed != 0 && o.Speed != 1 {
			return Usagef("--speed %v: it applies to --trace only", o.Speed)
		}
		return nil
	}
	switch {
	case !(o.Speed == 0 || (o.Speed > 0 && o.Speed <= MaxHammerSpeed)):
		return Usagef("--speed %v: choose a factor above 0 and at most %d (2: twice as fast)", o.Speed, MaxHammerSpeed)
	case o.Identity == scenario.IdentitySource:
		return Usagef("--identity source: a trace's clients are sent as X-Forwarded-For; drop --identity with --trace")
	case o.TraceOptions.Client == trace.ClientKey:
		return Usagef("--client key: hammer sends each client as X-Forwarded-For, so its clients must be addresses; use remote-addr or xff")
	}
	return nil
}

// traffic is the run's identities and schedule: hammer's pattern, or the --trace to replay.
func (o HammerOptions) traffic(salt uint8, in io.Reader) ([]string, *scenario.Schedule, error) {
	if o.Trace != "" {
		return o.traceSchedule(in)
	}
	ids, err := o.identities(salt)
	if err != nil {
		return nil, nil, UsageError(err)
	}
	sched, err := scenario.Build(scenario.Config{
		Pattern: o.Pattern, IPs: o.IPs, RPS: o.RPS, Duration: o.Duration, Seed: o.Seed,
		Products: o.Products, Limit: o.Policy.Limit, Window: o.Policy.Window,
	})
	if err != nil {
		return nil, nil, UsageError(err)
	}
	return ids, sched, nil
}

// traceSchedule reads the --trace into a schedule: each request at its time in the
// trace divided by --speed, from the trace's clients (sent as X-Forwarded-For). The
// schedule starts on the window edge (of W × speed, in trace time) before the first
// request, so each request keeps its place in its window. A replay is held in memory
// (at most scenario.MaxArrivals requests): it lasts as long as it lasts anyway.
func (o HammerOptions) traceSchedule(in io.Reader) ([]string, *scenario.Schedule, error) {
	tr, err := trace.Open(o.Trace, in, o.TraceOptions)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, Usagef("--trace %s: no such file", o.Trace)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("--trace: %w", err)
	}
	defer tr.Close()
	speed := o.Speed
	if speed == 0 {
		speed = 1
	}
	var reqs []trace.Request
	for {
		r, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("--trace %s: %w", o.Trace, err)
		}
		if len(reqs) == scenario.MaxArrivals {
			return nil, nil, Usagef("--trace %s has more than %d requests; cut it with --from/--to", o.Trace, scenario.MaxArrivals)
		}
		reqs = append(reqs, r)
	}
	if len(reqs) == 0 {
		return nil, nil, Usagef("--trace %s has no requests to replay (%d bad lines)", o.Trace, tr.Stats().Bad)
	}
	wt := int64(float64(o.Policy.WindowMicros()) * speed)
	base := reqs[0].Time - reqs[0].Time%max(1, wt)
	sched := &scenario.Schedule{}
	index := map[string]int32{}
	var ids []string
	for _, r := range reqs {
		id, ok := index[r.Client]
		if !ok {
			addr, err := forwardedAddr(r.Client)
			if err != nil {
				return nil, nil, Usagef("--trace %s: %v", o.Trace, err)
			}
			if len(ids) == scenario.MaxIdentities {
				return nil, nil, Usagef("--trace %s has more than %d clients; cut it with --from/--to", o.Trace, scenario.MaxIdentities)
			}
			id = int32(len(ids))
			index[r.Client] = id
			ids = append(ids, addr)
		}
		at := time.Duration(math.Round(float64(r.Time-base)/speed)) * time.Microsecond
		sched.Arrivals = append(sched.Arrivals, scenario.Arrival{At: at, Identity: id, Product: productOf(r.Route, o.Products)})
	}
	last := sched.Arrivals[len(sched.Arrivals)-1].At
	sched.Config = scenario.Config{Pattern: PatternTrace, IPs: len(ids), Duration: last + time.Millisecond, Seed: o.Seed,
		Products: o.Products, Limit: o.Policy.Limit, Window: o.Policy.Window}
	sched.Config.RPS = float64(len(sched.Arrivals)) / sched.Config.Duration.Seconds()
	return ids, sched, nil
}

// forwardedAddr is the address sent in X-Forwarded-For for a trace's client: the
// client itself, or the first address of its IPv6 network, which the nodes group
// back into the same network.
func forwardedAddr(client string) (string, error) {
	if p, err := netip.ParsePrefix(client); err == nil {
		return p.Addr().String(), nil
	}
	if a, err := netip.ParseAddr(client); err == nil {
		return a.String(), nil
	}
	return "", fmt.Errorf("client %q is not an address: hammer sends each client as X-Forwarded-For (simulate takes any client)", report.Shown(client))
}

// productOf is the product a route asks for: n of /products/n (within products), else 1.
func productOf(route string, products int) int32 {
	if n, err := strconv.Atoi(strings.TrimPrefix(route, "/products/")); err == nil && n > 0 && strings.HasPrefix(route, "/products/") {
		return int32((n-1)%products + 1)
	}
	return 1
}

// describeTrace names a replayed trace in the report: its clients, rate and span.
func describeTrace(h *report.Hammer, sched *scenario.Schedule) {
	if sched.Config.Pattern != PatternTrace {
		return
	}
	h.Pattern, h.IPs, h.TargetRPS = PatternTrace, sched.Config.IPs, sched.Config.RPS
	h.DurationMs = float64(sched.Config.Duration) / float64(time.Millisecond)
}
