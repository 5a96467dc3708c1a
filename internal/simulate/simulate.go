// Package simulate runs ratelab's algorithm models over a stream of requests in
// virtual time: no Redis, no HTTP, no clock but the requests' own times. The models
// are the ones the Lua scripts are tested against, so each decision is the one the
// script would make at that time. Every (policy, algorithm) pair is a lane, and all
// lanes take each request in one pass, so a sweep of policies costs one read of the
// trace. It keeps state per client, not per request: a trace of any length runs in
// memory proportional to its clients.
package simulate

import (
	"cmp"
	"errors"
	"fmt"
	"hash/fnv"
	"runtime"
	"slices"
	"sync"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/scenario"
)

// The balancers in front of per-node limiters.
const (
	// RoundRobin sends request i to node i mod N, as hammer's balancer does.
	RoundRobin = "round-robin"
	// HashClient sends each client to one node, by a hash of its identity.
	HashClient = "hash"
)

// Balancers lists the balancers, the default first.
func Balancers() []string { return []string{RoundRobin, HashClient} }

// MaxLanes bounds the (policy, algorithm) pairs of one run.
const MaxLanes = 1024

// Config is what a simulation runs.
type Config struct {
	// Algorithms are the algorithms' names; Policies the policies. Every pair is a lane.
	Algorithms []string
	Policies   []algorithms.Policy
	// Nodes is how many per-node limiters each lane has (1: one shared limit, as with
	// Redis); Balancer spreads the requests over them (RoundRobin when "").
	Nodes    int
	Balancer string
	// Follow is the client whose admitted times a lane keeps for a timeline; "" for
	// the first client seen.
	Follow string
	// Span is the time (µs) over which a client's rate is judged (requests × W
	// against L × span); 0 for the time from the first request to the last. It is
	// never less than a window.
	Span int64
	// OnDecision, when set, sees every decision: the lane (policies in order, then
	// algorithms), the client, its node, and the decision. AddBatch then runs the
	// lanes one after another.
	OnDecision func(lane int, client int32, node int, d algorithms.Decision)
	// Workers is how many goroutines AddBatch spreads the lanes over (0: GOMAXPROCS).
	Workers int
}

// ErrConfig is wrapped by the errors of a Config that cannot run.
var ErrConfig = errors.New("invalid simulation")

// Engine decides requests in time order for every lane.
type Engine struct {
	cfg   Config
	lanes []*lane
	ids   map[string]int32
	// batch holds AddBatch's clients and nodes, reused.
	batchIDs   []int32
	batchNodes []int32
	// per client, by index in order of first request
	names    []string
	requests []int64
	node     []int32 // the client's node with HashClient
	sent     int64
	first    int64
	last     int64
	follow   int32
}

type lane struct {
	algorithm string
	policy    algorithms.Policy
	w, tenth  int64
	// models are each node's model of each client, made at its first request there,
	// with more than one node.
	models  [][]algorithms.Model
	clients []laneClient
	allowed int64
	denied  int64
	// followed are the followed client's admitted times.
	followed []int64
}

type laneClient struct {
	// model is the client's model with one node, beside its figures so that a
	// decision touches one place; with several, lane.models holds them.
	model   algorithms.Model
	peaks   scenario.PeakTracker
	allowed int64
	denied  int64
	// firstDenial is the time of the client's first denied request, 0 if none.
	firstDenial int64
}

// New makes an engine for cfg.
func New(cfg Config) (*Engine, error) {
	if cfg.Nodes == 0 {
		cfg.Nodes = 1
	}
	if cfg.Balancer == "" {
		cfg.Balancer = RoundRobin
	}
	switch {
	case len(cfg.Algorithms) == 0 || len(cfg.Policies) == 0:
		return nil, fmt.Errorf("%w: no algorithm or no policy", ErrConfig)
	case len(cfg.Algorithms)*len(cfg.Policies) > MaxLanes:
		return nil, fmt.Errorf("%w: %d algorithms × %d policies is more than %d", ErrConfig, len(cfg.Algorithms), len(cfg.Policies), MaxLanes)
	case cfg.Nodes < 1:
		return nil, fmt.Errorf("%w: %d nodes", ErrConfig, cfg.Nodes)
	case !slices.Contains(Balancers(), cfg.Balancer):
		return nil, fmt.Errorf("%w: balancer %q; choose %s or %s", ErrConfig, cfg.Balancer, RoundRobin, HashClient)
	}
	e := &Engine{cfg: cfg, ids: map[string]int32{}, follow: -1}
	for _, p := range cfg.Policies {
		for _, name := range cfg.Algorithms {
			if _, err := algorithms.NewModel(name, p); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrConfig, err)
			}
			w := p.WindowMicros()
			e.lanes = append(e.lanes, &lane{algorithm: name, policy: p, w: w, tenth: scenario.TenthOf(w),
				models: make([][]algorithms.Model, cfg.Nodes)})
		}
	}
	return e, nil
}

// Intern returns the client's index, adding it when new; clients are numbered in
// the order they are interned, from 0.
func (e *Engine) Intern(client string) int32 {
	if id, ok := e.ids[client]; ok {
		return id
	}
	id := int32(len(e.names))
	e.ids[client] = id
	e.names = append(e.names, client)
	e.requests = append(e.requests, 0)
	if e.cfg.Balancer == HashClient {
		h := fnv.New32a()
		_, _ = h.Write([]byte(client))
		e.node = append(e.node, int32(h.Sum32()%uint32(e.cfg.Nodes)))
	}
	if (e.cfg.Follow == "" && id == 0) || client == e.cfg.Follow {
		e.follow = id
	}
	for _, l := range e.lanes {
		l.clients = append(l.clients, laneClient{})
	}
	return id
}

// Add decides one request of client at t (µs since the epoch, not before the last
// request's) in every lane.
func (e *Engine) Add(t int64, client string) { e.AddID(t, e.Intern(client)) }

// AddID is Add for a client already interned.
func (e *Engine) AddID(t int64, id int32) {
	node := e.count(t, id)
	for i, l := range e.lanes {
		d := l.decide(t, id, node, id == e.follow)
		if e.cfg.OnDecision != nil {
			e.cfg.OnDecision(i, id, node, d)
		}
	}
}

// count counts a request of id at t and returns the node it goes to.
func (e *Engine) count(t int64, id int32) int {
	if e.sent == 0 {
		e.first = t
	}
	e.last = t
	node := 0
	switch {
	case e.cfg.Nodes == 1:
	case e.cfg.Balancer == HashClient:
		node = int(e.node[id])
	default:
		node = int(e.sent % int64(e.cfg.Nodes))
	}
	e.sent++
	e.requests[id]++
	return node
}

// AddBatch decides the requests of clients at times (ascending, from the last
// request's time on), in order, as Add one by one would: the same decisions, with
// the lanes spread over Config.Workers goroutines, each lane in request order.
func (e *Engine) AddBatch(times []int64, clients []string) {
	if e.cfg.OnDecision != nil {
		for i, t := range times {
			e.Add(t, clients[i])
		}
		return
	}
	e.batchIDs, e.batchNodes = e.batchIDs[:0], e.batchNodes[:0]
	for i, t := range times {
		id := e.Intern(clients[i])
		e.batchIDs = append(e.batchIDs, id)
		e.batchNodes = append(e.batchNodes, int32(e.count(t, id)))
	}
	ids, nodes := e.batchIDs, e.batchNodes
	run := func(l *lane) {
		for i, t := range times {
			l.decide(t, ids[i], int(nodes[i]), ids[i] == e.follow)
		}
	}
	workers := e.cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, len(e.lanes))
	if workers <= 1 || len(times) < 256 {
		for _, l := range e.lanes {
			run(l)
		}
		return
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(e.lanes); i += workers {
				run(e.lanes[i])
			}
		})
	}
	wg.Wait()
}

func (l *lane) decide(t int64, id int32, node int, follow bool) algorithms.Decision {
	c := &l.clients[id]
	m := c.model
	if node > 0 || len(l.models) > 1 {
		m = l.nodeModel(id, node)
	} else if m == nil {
		m, _ = algorithms.NewModel(l.algorithm, l.policy) // checked in New
		c.model = m
	}
	d := m.Allow(t)
	if d.Allowed {
		l.allowed++
		c.allowed++
		c.peaks.Add(t, l.w, l.tenth)
		if follow {
			l.followed = append(l.followed, t)
		}
		return d
	}
	l.denied++
	if c.denied == 0 {
		c.firstDenial = t
	}
	c.denied++
	return d
}

// nodeModel is the model of client id on node, made at its first request there.
func (l *lane) nodeModel(id int32, node int) algorithms.Model {
	models := l.models[node]
	if int(id) >= len(models) {
		models = append(models, make([]algorithms.Model, int(id)+1-len(models))...)
		l.models[node] = models
	}
	m := models[id]
	if m == nil {
		m, _ = algorithms.NewModel(l.algorithm, l.policy) // checked in New
		models[id] = m
	}
	return m
}

// Result is what a simulation found, lane by lane.
type Result struct {
	// Requests and Clients are the requests decided and the clients that sent them.
	Requests int64
	Clients  int
	// First and Last are the first and last request's times (µs).
	First, Last int64
	// Followed is the client whose admitted times the lanes kept ("" without requests).
	Followed string
	Lanes    []LaneResult
}

// LaneResult is one (policy, algorithm) lane's outcome.
type LaneResult struct {
	Algorithm string
	Policy    algorithms.Policy
	Allowed   int64
	Denied    int64
	// Burst is the burst analysis over every client, as hammer's; PeakClient is the
	// client of Burst.PeakIdentity.
	Burst      scenario.Burst
	PeakClient string
	// WellBehavedRefused are the clients denied at least once whose rate over the
	// whole trace was within the limit (requests × W ≤ L × span); their Requests are
	// the denials they got.
	WellBehavedRefused Who
	// AbuseAdmitted are the clients over the limit over the whole trace that still
	// got more than L admitted in some window W; their Requests are what they got
	// over L in their busiest window.
	AbuseAdmitted Who
	// Top are the clients with the most denials, most first.
	Top []Client
	// Followed are the followed client's admitted times (µs).
	Followed []int64
}

// Who counts a kind of client and requests of theirs.
type Who struct {
	Clients  int64
	Requests int64
}

// Client is one client's figures in one lane.
type Client struct {
	Client   string
	Requests int64
	Allowed  int64
	Denied   int64
	// PeakInWindow is the most it got admitted in any window W.
	PeakInWindow int64
	// FirstDenial is its first denied request's time (µs), 0 if none.
	FirstDenial int64
}

// Result sums up the simulation so far, with the top clients by denials in each lane.
func (e *Engine) Result(top int) Result {
	r := Result{Requests: e.sent, Clients: len(e.names), First: e.first, Last: e.last}
	if e.follow >= 0 {
		r.Followed = e.names[e.follow]
	}
	for _, l := range e.lanes {
		r.Lanes = append(r.Lanes, e.laneResult(l, top))
	}
	return r
}

func (e *Engine) laneResult(l *lane, top int) LaneResult {
	lr := LaneResult{Algorithm: l.algorithm, Policy: l.policy, Allowed: l.allowed, Denied: l.denied,
		Followed: slices.Clone(l.followed)}
	span := max(e.last-e.first, e.cfg.Span, l.w)
	limit := l.policy.Limit
	var denied []int32
	for id := range l.clients {
		c := &l.clients[id]
		if c.peaks.InWindow > lr.Burst.PeakInWindow {
			lr.Burst.PeakInWindow, lr.Burst.PeakIdentity = c.peaks.InWindow, id
		}
		lr.Burst.PeakInTenthWindow = max(lr.Burst.PeakInTenthWindow, c.peaks.InTenth)
		within := e.requests[id]*l.w <= limit*span
		switch {
		case within && c.denied > 0:
			lr.WellBehavedRefused.Clients++
			lr.WellBehavedRefused.Requests += c.denied
		case !within && c.peaks.InWindow > limit:
			lr.AbuseAdmitted.Clients++
			lr.AbuseAdmitted.Requests += c.peaks.InWindow - limit
		}
		if c.denied > 0 {
			denied = append(denied, int32(id))
		}
	}
	lr.Burst.BurstRatio = float64(lr.Burst.PeakInWindow) / float64(limit)
	if len(e.names) > 0 {
		lr.PeakClient = e.names[lr.Burst.PeakIdentity]
	}
	slices.SortFunc(denied, func(a, b int32) int {
		if c := cmp.Compare(l.clients[b].denied, l.clients[a].denied); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	for _, id := range denied[:min(top, len(denied))] {
		c := l.clients[id]
		lr.Top = append(lr.Top, Client{Client: e.names[id], Requests: e.requests[id], Allowed: c.allowed, Denied: c.denied,
			PeakInWindow: c.peaks.InWindow, FirstDenial: c.firstDenial})
	}
	return lr
}

// BusiestEdge is the window edge (a multiple of w, µs) nearest the middle of the
// busiest interval of length w in times (ascending): where a timeline of them is
// centred. It is 0 for no times.
func BusiestEdge(times []int64, w int64) int64 {
	if len(times) == 0 {
		return 0
	}
	var peak, start int64
	lo := 0
	for hi, t := range times {
		for t-times[lo] >= w {
			lo++
		}
		if n := int64(hi - lo + 1); n > peak {
			peak, start = n, times[lo]
		}
	}
	mid := start + w/2
	return (mid + w/2) / w * w
}
