package scenario

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// The traffic patterns.
const (
	// PatternMixed is steady traffic with one identity in ten a boundary attacker: the
	// default, so that the first run already shows the fixed-window boundary burst.
	PatternMixed = "mixed"
	// PatternSteady spreads the rate evenly over every identity at constant spacing.
	PatternSteady = "steady"
	// PatternPoisson sends at exponentially distributed intervals from random identities.
	PatternPoisson = "poisson"
	// PatternBoundary makes every identity a boundary attacker.
	PatternBoundary = "boundary"
	// PatternNoisy has one identity send three requests in five; the rest share the others.
	PatternNoisy = "noisy"
)

// Patterns lists the pattern names, the default first.
func Patterns() []string {
	return []string{PatternMixed, PatternSteady, PatternPoisson, PatternBoundary, PatternNoisy}
}

// ErrUnknownPattern is wrapped by the error for a pattern name that is not one of Patterns.
var ErrUnknownPattern = errors.New("unknown pattern")

// CheckPattern checks a pattern name, with an error that lists the known ones.
func CheckPattern(name string) error {
	if slices.Contains(Patterns(), name) {
		return nil
	}
	return fmt.Errorf("%w %q; choose one of %s", ErrUnknownPattern, name, strings.Join(Patterns(), ", "))
}

// MaxArrivals bounds the schedule of one run (rate × duration).
const MaxArrivals = 20_000_000

// Config is what a schedule is computed from. The same Config always gives the same
// schedule.
type Config struct {
	Pattern  string
	IPs      int
	RPS      float64
	Duration time.Duration
	Seed     uint64
	// Products is how many distinct products are requested, with Zipf popularity.
	Products int
	// Limit and Window are the policy under test: window edges fall at multiples of
	// Window in schedule time, and a boundary attacker sends at least 1.5×Limit on
	// each side of an edge, enough to fill two windows.
	Limit  int64
	Window time.Duration
}

// Arrival is one request of the schedule.
type Arrival struct {
	// At is the intended send time, from the start of the run.
	At time.Duration
	// Identity indexes the run's identities.
	Identity int32
	// Product is the requested product id, from 1.
	Product int32
}

// Schedule is a computed open-loop schedule: every request's intended send time,
// identity and product, sorted by time. Schedule time 0 is a window edge of the
// limiter's clock; the runner aligns it.
type Schedule struct {
	Config Config
	// Arrivals are sorted by At.
	Arrivals []Arrival
	// Attackers are the identities that burst around window edges, ascending.
	Attackers []int
	// BurstEdges are the window edges, in schedule time, around which attackers burst.
	BurstEdges []time.Duration
}

// Build computes the schedule for c.
func Build(c Config) (*Schedule, error) {
	switch {
	case CheckPattern(c.Pattern) != nil:
		return nil, CheckPattern(c.Pattern)
	case c.IPs < 1 || c.IPs > MaxIdentities:
		return nil, fmt.Errorf("%d identities: choose between 1 and %d", c.IPs, MaxIdentities)
	case !(c.RPS > 0) || math.IsInf(c.RPS, 0):
		return nil, fmt.Errorf("rate %v: it must be a positive number of requests per second", c.RPS)
	case c.Duration <= 0:
		return nil, fmt.Errorf("duration %s: it must be positive", c.Duration)
	case c.RPS*c.Duration.Seconds() > MaxArrivals:
		return nil, fmt.Errorf("%v rps for %s is %.0f requests; at most %d per run", c.RPS, c.Duration,
			c.RPS*c.Duration.Seconds(), MaxArrivals)
	case c.Products < 1:
		return nil, fmt.Errorf("%d products: there must be at least one", c.Products)
	case c.Limit < 1 || c.Window <= 0:
		return nil, fmt.Errorf("policy %d per %s: limit and window must be positive", c.Limit, c.Window)
	}
	s := &Schedule{Config: c}
	rng := rand.New(rand.NewPCG(c.Seed, 0x7261_7465_6c61_6221))
	all := make([]int, c.IPs)
	for i := range all {
		all[i] = i
	}
	switch c.Pattern {
	case PatternSteady:
		s.steady(all, c.RPS, rng)
	case PatternPoisson:
		s.poisson(rng)
	case PatternNoisy:
		s.noisy()
	case PatternBoundary:
		perWindow := max(1, int(math.Round(c.RPS*c.Window.Seconds()/float64(c.IPs))))
		s.boundary(all, perWindow, rng)
	case PatternMixed:
		attackers := max(1, c.IPs/10)
		// An attacker bursts 1.5×L (enough to fill two windows) or its share of the
		// rate, whichever is more, but the attackers never take more than half the rate.
		share := c.RPS * c.Window.Seconds() / float64(c.IPs)
		capped := math.Floor(c.RPS * c.Window.Seconds() / 2 / float64(attackers))
		perWindow := max(1, int(min(max(float64((3*c.Limit+1)/2), math.Round(share)), capped)))
		s.boundary(all[:attackers], perWindow, rng)
		// The steady identities share what the attackers leave of the rate.
		attackRate := float64(attackers*perWindow) / c.Window.Seconds()
		if rest := c.RPS - attackRate; rest > 0 && attackers < c.IPs {
			s.steady(all[attackers:], rest, rng)
		}
	}
	if len(s.Arrivals) > MaxArrivals {
		return nil, fmt.Errorf("the %s pattern makes %d requests; at most %d per run", c.Pattern, len(s.Arrivals), MaxArrivals)
	}
	slices.SortStableFunc(s.Arrivals, func(a, b Arrival) int {
		if c := cmp.Compare(a.At, b.At); c != 0 {
			return c
		}
		return cmp.Compare(a.Identity, b.Identity)
	})
	s.assignProducts(rng)
	return s, nil
}

// steady sends rate evenly: one request every 1/rate, the identities in a seeded
// order, round robin, so each identity's requests are evenly spaced too.
func (s *Schedule) steady(ids []int, rate float64, rng *rand.Rand) {
	order := slices.Clone(ids)
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	n := int(rate * s.Config.Duration.Seconds())
	for i := range n {
		s.add(at(float64(i)/rate), order[i%len(order)])
	}
}

// poisson sends at exponentially distributed intervals, each from a random identity.
func (s *Schedule) poisson(rng *rand.Rand) {
	rate, d := s.Config.RPS, s.Config.Duration.Seconds()
	for t := rng.ExpFloat64() / rate; t < d; t += rng.ExpFloat64() / rate {
		s.add(at(t), rng.IntN(s.Config.IPs))
	}
}

// noisy sends at constant spacing; three requests in five come from identity 0.
func (s *Schedule) noisy() {
	rate := s.Config.RPS
	n := int(rate * s.Config.Duration.Seconds())
	others := s.Config.IPs - 1
	k := 0
	for i := range n {
		id := 0
		if i%5 >= 3 && others > 0 {
			id = 1 + k%others
			k++
		}
		s.add(at(float64(i)/rate), id)
	}
}

// boundary makes ids attackers: at every other window edge (W, 3W, 5W, …) each sends
// perWindow requests in the tenth of a window before the edge and perWindow in the
// tenth after it. Bursting at every other edge leaves each window with one burst, so a
// fixed window admits L before the edge and L after it: 2L within W/5.
func (s *Schedule) boundary(ids []int, perWindow int, rng *rand.Rand) {
	w := s.Config.Window
	tenth := w / 10
	spacing := float64(tenth) / float64(perWindow)
	for edge := w; edge-tenth < s.Config.Duration; edge += 2 * w {
		s.BurstEdges = append(s.BurstEdges, edge)
	}
	for _, id := range ids {
		s.Attackers = append(s.Attackers, id)
		phase := rng.Float64() // each attacker's offset within the spacing
		for _, edge := range s.BurstEdges {
			for j := range perWindow {
				off := time.Duration((float64(j) + phase) * spacing)
				s.add(edge-tenth+off, id)
				s.add(edge+off, id)
			}
		}
	}
	slices.Sort(s.Attackers)
}

func (s *Schedule) add(t time.Duration, id int) {
	if t >= 0 && t < s.Config.Duration {
		s.Arrivals = append(s.Arrivals, Arrival{At: t, Identity: int32(id)})
	}
}

// assignProducts draws each request's product from a Zipf distribution: product 1
// is the most popular, and a few products take most of the traffic.
func (s *Schedule) assignProducts(rng *rand.Rand) {
	if s.Config.Products == 1 {
		for i := range s.Arrivals {
			s.Arrivals[i].Product = 1
		}
		return
	}
	z := rand.NewZipf(rng, 1.1, 1, uint64(s.Config.Products-1))
	for i := range s.Arrivals {
		s.Arrivals[i].Product = int32(z.Uint64()) + 1
	}
}

func at(seconds float64) time.Duration { return time.Duration(seconds * float64(time.Second)) }

// Pace is the pacer: given the time elapsed since the start and how many requests
// were sent, it says how long to wait before sending the next one (0: send it now,
// it is due or late), or to stop when every request is sent and the schedule's
// duration is over. It never reads a clock.
func (s *Schedule) Pace(elapsed time.Duration, sent int) (wait time.Duration, stop bool) {
	if sent < len(s.Arrivals) {
		return max(0, s.Arrivals[sent].At-elapsed), false
	}
	if elapsed < s.Config.Duration {
		return s.Config.Duration - elapsed, false
	}
	return 0, true
}

// AttackerOrFirst is the identity a timeline follows: the first boundary attacker,
// or identity 0 when the pattern has none.
func (s *Schedule) AttackerOrFirst() int {
	if len(s.Attackers) > 0 {
		return s.Attackers[0]
	}
	return 0
}

// TimelineEdge is the window edge, in schedule time, that a timeline is centred on:
// the first burst edge, or the first edge when the pattern has none.
func (s *Schedule) TimelineEdge() time.Duration {
	if len(s.BurstEdges) > 0 {
		return s.BurstEdges[0]
	}
	return s.Config.Window
}
