package commands

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/simulate"
)

// ParseSweep reads a --sweep file: one policy a line, as the report writes it
// ("100/1m", "100/1m burst 200") or as key names do ("100r1m", "100r1m-b200"); blank
// lines and lines starting with # are skipped.
func ParseSweep(r io.Reader) ([]algorithms.Policy, error) {
	var out []algorithms.Policy
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		p, err := parseSweepLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no policy in it; write one a line, e.g. 100/1m or 100/1m burst 200")
	}
	return out, nil
}

func parseSweepLine(line string) (algorithms.Policy, error) {
	limit, rest, ok := strings.Cut(line, "/")
	if !ok {
		return algorithms.ParsePolicy(line)
	}
	window, burst, hasBurst := strings.Cut(strings.TrimSpace(rest), " burst ")
	var p algorithms.Policy
	var err error
	if p.Limit, err = strconv.ParseInt(strings.TrimSpace(limit), 10, 64); err != nil {
		return p, fmt.Errorf("%w: limit %q in %q is not a number", algorithms.ErrInvalidPolicy, limit, line)
	}
	if p.Window, err = time.ParseDuration(strings.TrimSpace(window)); err != nil {
		return p, fmt.Errorf("%w: window %q in %q is not a duration (e.g. 1m)", algorithms.ErrInvalidPolicy, window, line)
	}
	if hasBurst {
		if p.Burst, err = strconv.ParseInt(strings.TrimSpace(burst), 10, 64); err != nil {
			return p, fmt.Errorf("%w: burst %q in %q is not a number", algorithms.ErrInvalidPolicy, burst, line)
		}
	}
	return p, p.Validate()
}

// loadSweep reads --sweep into opts.Sweep, checking the lanes as Validate does.
func loadSweep(opts *SimulateOptions) error {
	f, err := os.Open(opts.SweepFile)
	if err != nil {
		return Usagef("--sweep: %v", err)
	}
	defer f.Close()
	policies, err := ParseSweep(f)
	if err != nil {
		return Usagef("--sweep %s: %v", opts.SweepFile, err)
	}
	if n := len(policies) * len(opts.Algorithms); n > simulate.MaxLanes {
		return Usagef("--sweep %s: %d policies × %d algorithms is %d lanes; at most %d", opts.SweepFile, len(policies), len(opts.Algorithms), n, simulate.MaxLanes)
	}
	opts.Sweep = policies
	return nil
}
