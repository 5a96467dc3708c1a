package scenario

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func baseConfig() Config {
	return Config{Pattern: PatternMixed, IPs: 20, RPS: 400, Duration: 2 * time.Second, Seed: 7, Products: 50,
		Limit: 10, Window: 500 * time.Millisecond}
}

func TestBuildIsDeterministic(t *testing.T) {
	t.Parallel()
	for _, p := range Patterns() {
		t.Run(p, func(t *testing.T) {
			t.Parallel()
			c := baseConfig()
			c.Pattern = p
			a, err := Build(c)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := Build(c)
			if !slices.Equal(a.Arrivals, b.Arrivals) {
				t.Fatal("the same config gave two different schedules")
			}
			c.Seed++
			other, _ := Build(c)
			if slices.Equal(a.Arrivals, other.Arrivals) {
				t.Fatal("a different seed gave the same schedule")
			}
			if !slices.IsSortedFunc(a.Arrivals, func(x, y Arrival) int { return int(x.At - y.At) }) {
				t.Fatal("arrivals are not sorted by time")
			}
			for _, ar := range a.Arrivals {
				if ar.At < 0 || ar.At >= c.Duration || ar.Identity < 0 || int(ar.Identity) >= c.IPs ||
					ar.Product < 1 || int(ar.Product) > c.Products {
					t.Fatalf("arrival out of range: %+v", ar)
				}
			}
		})
	}
}

func TestBuildRate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern  string
		min, max int
	}{
		{PatternSteady, 800, 800},
		{PatternNoisy, 800, 800},
		{PatternMixed, 800, 800},
		{PatternBoundary, 760, 800}, // bursts whose second half falls past the end are cut
		{PatternPoisson, 700, 900},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			t.Parallel()
			c := baseConfig()
			c.Pattern = tt.pattern
			s, err := Build(c)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(s.Arrivals); n < tt.min || n > tt.max {
				t.Fatalf("%d arrivals for 400 rps over 2s; want %d..%d", n, tt.min, tt.max)
			}
		})
	}
}

func TestBoundaryBurstsAroundEveryOtherEdge(t *testing.T) {
	t.Parallel()
	c := baseConfig()
	c.Pattern = PatternBoundary
	s, err := Build(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := []time.Duration{500 * time.Millisecond, 1500 * time.Millisecond}; !slices.Equal(s.BurstEdges, want) {
		t.Fatalf("burst edges %v, want %v", s.BurstEdges, want)
	}
	if len(s.Attackers) != c.IPs {
		t.Fatalf("%d attackers, want every identity (%d)", len(s.Attackers), c.IPs)
	}
	tenth := c.Window / 10
	before, after := 0, 0
	for _, a := range s.Arrivals {
		if a.Identity != 0 {
			continue
		}
		near := false
		for _, e := range s.BurstEdges {
			switch {
			case a.At >= e-tenth && a.At < e:
				before, near = before+1, true
			case a.At >= e && a.At < e+tenth:
				after, near = after+1, true
			}
		}
		if !near {
			t.Fatalf("attacker request at %s is not within W/10 of a burst edge", a.At)
		}
	}
	// 400 rps over 20 identities is 10 per 500ms window, each side of each burst edge.
	if before != 20 || after != 20 {
		t.Fatalf("identity 0 sent %d before and %d after its burst edges; want 20 and 20", before, after)
	}
}

func TestMixedHasAttackersAndKeepsTheRate(t *testing.T) {
	t.Parallel()
	c := baseConfig()
	s, err := Build(c)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Attackers, []int{0, 1}) {
		t.Fatalf("attackers %v, want one in ten: [0 1]", s.Attackers)
	}
	perID := make(map[int32]int)
	for _, a := range s.Arrivals {
		perID[a.Identity]++
	}
	// An attacker bursts 1.5×L = 15 each side of each of 2 burst edges.
	if perID[0] != 60 {
		t.Fatalf("attacker sent %d, want 60", perID[0])
	}
}

func TestMixedAttackersTakeAtMostHalfTheRate(t *testing.T) {
	t.Parallel()
	c := baseConfig()
	c.Limit = 1_000_000 // a burst of 1.5×L would be millions of requests
	s, err := Build(c)
	if err != nil {
		t.Fatal(err)
	}
	attack := 0
	for _, a := range s.Arrivals {
		if a.Identity < 2 {
			attack++
		}
	}
	if total := len(s.Arrivals); total > 800 || attack > total/2+2 {
		t.Fatalf("%d requests, %d from attackers, for 400 rps over 2s", total, attack)
	}
}

func TestNoisyOneIdentitySendsMost(t *testing.T) {
	t.Parallel()
	c := baseConfig()
	c.Pattern = PatternNoisy
	s, _ := Build(c)
	n := 0
	for _, a := range s.Arrivals {
		if a.Identity == 0 {
			n++
		}
	}
	if n*5 != len(s.Arrivals)*3 {
		t.Fatalf("identity 0 sent %d of %d; want three in five", n, len(s.Arrivals))
	}
}

func TestProductsAreSkewed(t *testing.T) {
	t.Parallel()
	s, _ := Build(baseConfig())
	counts := make(map[int32]int)
	for _, a := range s.Arrivals {
		counts[a.Product]++
	}
	if counts[1] < counts[50]*5 || counts[1] < len(s.Arrivals)/10 {
		t.Fatalf("product 1 got %d and product 50 got %d of %d: not skewed", counts[1], counts[50], len(s.Arrivals))
	}
}

func TestBuildRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(*Config)
	}{
		{"unknown pattern", func(c *Config) { c.Pattern = "spiky" }},
		{"no identities", func(c *Config) { c.IPs = 0 }},
		{"too many identities", func(c *Config) { c.IPs = MaxIdentities + 1 }},
		{"negative rate", func(c *Config) { c.RPS = -1 }},
		{"zero duration", func(c *Config) { c.Duration = 0 }},
		{"no products", func(c *Config) { c.Products = 0 }},
		{"zero limit", func(c *Config) { c.Limit = 0 }},
		{"too many requests", func(c *Config) { c.RPS = 1e9 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := baseConfig()
			tt.modify(&c)
			if _, err := Build(c); err == nil {
				t.Fatal("Build accepted a bad config")
			}
		})
	}
	if err := CheckPattern("spiky"); !errors.Is(err, ErrUnknownPattern) {
		t.Fatalf("CheckPattern: %v", err)
	}
}

func TestPace(t *testing.T) {
	t.Parallel()
	s := &Schedule{
		Config:   Config{Duration: time.Second},
		Arrivals: []Arrival{{At: 0}, {At: 100 * time.Millisecond}, {At: 100 * time.Millisecond}, {At: 900 * time.Millisecond}},
	}
	ms := time.Millisecond
	tests := []struct {
		name     string
		elapsed  time.Duration
		sent     int
		wantWait time.Duration
		wantStop bool
	}{
		{"before the start", -5 * ms, 0, 5 * ms, false},
		{"first is due", 0, 0, 0, false},
		{"wait for the second", 40 * ms, 1, 60 * ms, false},
		{"two due at once", 100 * ms, 2, 0, false},
		{"late: send at once", 950 * ms, 3, 0, false},
		{"all sent, duration not over", 950 * ms, 4, 50 * ms, false},
		{"all sent, over", time.Second, 4, 0, true},
		{"all sent, well past", 3 * time.Second, 4, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wait, stop := s.Pace(tt.elapsed, tt.sent)
			if wait != tt.wantWait || stop != tt.wantStop {
				t.Fatalf("Pace(%s, %d) = %s, %v; want %s, %v", tt.elapsed, tt.sent, wait, stop, tt.wantWait, tt.wantStop)
			}
		})
	}
}

func TestIdentities(t *testing.T) {
	t.Parallel()
	ids, err := Identities(300, 9)
	if err != nil {
		t.Fatal(err)
	}
	if ids[0] != "10.9.0.0" || ids[299] != "10.9.1.43" {
		t.Fatalf("identities %s … %s", ids[0], ids[299])
	}
	if _, err := Identities(0, 0); err == nil {
		t.Fatal("0 identities accepted")
	}
}
