package cmd

import (
	"context"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ratelab/ratelab/commands"
	"github.com/ratelab/ratelab/internal/compare"
	"github.com/ratelab/ratelab/internal/report"
)

// newCompareCmd builds `ratelab compare`; run is called with the validated options
// (commands.Compare, or a test's stand-in).
func newCompareCmd(ios commands.IO, _ *commands.Global, run func(context.Context, commands.CompareOptions, commands.IO) error) *cobra.Command {
	var opts commands.CompareOptions
	var limits []string
	cmd := &cobra.Command{
		Use:   "compare BASE.json NEW.json",
		Short: "Two JSON reports side by side: every figure, its change, and limits on how much may get worse",
		Long: `compare reads two JSON reports (ratelab hammer --output json --out FILE, or
simulate's) and shows every figure of both side by side with its change: the run's
rate, late sends, errors and cache, then each algorithm both ran: what it sent,
allowed and denied, its peaks in W and W/10 and burst ratio, its per-check and
end-to-end latency percentiles. Each change is marked worse or better where a figure
has a better way (lower latency, errors and bursts; higher achieved rate and hit
ratio), "changed" where it has none (sent, allowed, denied).

The reports must be runs of the same thing: the same pattern, the same algorithms
(with --fail-modes, each algorithm and mode: gcra/open), each with the same policy
(limit, window, burst) and the same --fault. Otherwise compare says what
differs and exits 2, unless --force. Other settings that differ (rate, nodes,
backend, seed) are listed above the figures. Fields compare does not know are
ignored, so reports of newer versions compare too.

--max-regression limits how much a figure may get worse, as [SUBJECT:]FIGURE=LIMIT,
comma-separated or repeated. LIMIT is relative to the base with a % (check_p99=20%:
at most 20% slower) or absolute, in the figure's unit (burst_ratio=0.1: at most 0.1
more; latencies in microseconds, or with ms/us: e2e_p99=2ms). A limit applies to every
algorithm (and to the run, for the run's figures) unless SUBJECT names one: gcra or
run. A figure with no better way (sent, allowed, denied, allowed_per_second) counts a
change either way. A limit on a figure one report lacks is missed.

Figures: ` + strings.Join(compare.FigureNames(), ", ") + ".",
		Example: `  # CI: fail (exit 3) if any algorithm's check p99 got 20% slower or its burst ratio rose by 0.1
  ratelab compare main.json branch.json --max-regression check_p99=20%,burst_ratio=0.1

  # a comment for the pull request
  ratelab compare main.json branch.json --output markdown > compare.md

  # one algorithm's end-to-end p99 may grow by 2 ms at most; the run's rate may drop 5%
  ratelab compare a.json b.json --max-regression gcra:e2e_p99=2ms --max-regression run:achieved_rps=5%` + "\n" + exitStatusHelp + `
     (compare: a --max-regression limit was missed)
  compare exits 2 for a file that is not a JSON report, and for reports of different
  patterns, algorithms or policies without --force`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 2 {
				return commands.Usagef("compare takes two JSON reports, BASE.json and NEW.json (got %d argument(s))", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Base, opts.New = args[0], args[1]
			t, err := compare.ParseThresholds(limits)
			if err != nil {
				return commands.Usagef("--max-regression %v", err)
			}
			opts.Thresholds = t
			if err := opts.Validate(); err != nil {
				return err
			}
			return run(cmd.Context(), opts, ios)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&limits, "max-regression", nil, "exit 3 if a figure got worse by more than this: FIGURE=20% (of the base) or FIGURE=0.1 (in its unit), comma-separated")
	f.BoolVar(&opts.Force, "force", false, "compare reports of different patterns, algorithms or policies (the output says what differs)")
	f.StringVarP(&opts.Output, "output", "o", report.FormatTable, "output format: "+strings.Join(report.CompareFormats(), ", ")+" (markdown for a pull request comment)")
	f.BoolVar(&opts.Wide, "wide", false, "on a terminal, never wrap the text to its width")
	f.IntVar(&opts.Width, "width", 0, "wrap the text to this many columns (default: the terminal's width)")
	return cmd
}
