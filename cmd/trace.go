package cmd

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/ratelab/ratelab/commands"
	"github.com/ratelab/ratelab/internal/trace"
)

// newTraceCmd builds `ratelab trace` and its verbs; export and generate are called
// with their validated options (commands.TraceExport and commands.TraceGenerate, or
// a test's stand-ins).
func newTraceCmd(ios commands.IO, _ *commands.Global,
	export func(context.Context, commands.TraceExportOptions, commands.IO) error,
	generate func(context.Context, commands.TraceGenerateOptions, commands.IO) error) *cobra.Command {
	c := &cobra.Command{
		Use:   "trace",
		Short: "Write traces for simulate: hammer's patterns, or a realistic generated access log",
		Long: `trace writes traces for simulate --trace and hammer --trace: export writes hammer's
synthetic patterns, generate a realistic nginx access log.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var ex commands.TraceExportOptions
	exportCmd := &cobra.Command{
		Use:   "export",
		Short: "Write hammer's synthetic traffic as a trace (CSV or JSON lines)",
		Long: `export writes the requests of hammer's schedule (--pattern, --ips, --rps, --duration,
--seed, --products; --limit and --window set where boundary attackers burst) as a
trace, at the virtual times simulate decides them, from identities 10.0.x.y: to
share, edit, and replay with simulate --trace.`,
		Example: `  ratelab trace export --pattern boundary --limit 10 --window 1s --out boundary.csv
  ratelab trace export --format jsonl | ratelab simulate --trace -` + "\n" + exitStatusHelp,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return export(cmd.Context(), ex, ios) },
	}
	f := exportCmd.Flags()
	addTrafficFlags(f, &ex.Traffic)
	f.Int64Var(&ex.Limit, "limit", commands.DefaultHammerLimit, "limit L of the policy the pattern is made for")
	f.DurationVar(&ex.Window, "window", commands.DefaultHammerWindow, "window W of the policy the pattern is made for")
	f.StringVar(&ex.Format, "format", trace.FormatCSV, "the trace's format: "+trace.FormatCSV+" or "+trace.FormatJSON)
	f.StringVar(&ex.Out, "out", "-", "the file to write (atomically); - for standard output")

	var gen commands.TraceGenerateOptions
	generateCmd := &cobra.Command{
		Use:   "generate",
		Short: "Write a seeded, realistic nginx combined access log",
		Long: `generate writes an nginx combined access log made from --seed: steady users, bursty
users (a page and its assets, then quiet), IPv6 clients (two addresses of a /64
each), one scraper at 5 requests a second, user agents with quotes (escaped \x22 as
nginx does), and one malformed line in --bad-every. With --xff every request comes
through one of three load balancers, the client first in X-Forwarded-For (nginx's
log_format main). The same flags give the same log, byte for byte.`,
		Example: `  ratelab trace generate --lines 1000000 --clients 2000 --out access.log
  ratelab trace generate --lines 100000 --xff --gzip --out access.log.gz` + "\n" + exitStatusHelp,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return generate(cmd.Context(), gen, ios) },
	}
	g := generateCmd.Flags()
	g.Uint64Var(&gen.Seed, "seed", 1, "seed of the log: the same seed, the same lines")
	g.Int64Var(&gen.Lines, "lines", 100_000, "lines to write, malformed ones included")
	g.IntVar(&gen.Clients, "clients", 500, "clients (at least 10)")
	g.IntVar(&gen.BadEvery, "bad-every", 1000, "one malformed line in this many (0: none)")
	g.BoolVar(&gen.XFF, "xff", false, "write nginx's log_format main: load balancers in $remote_addr, clients in X-Forwarded-For")
	g.BoolVar(&gen.Gzip, "gzip", false, "gzip the log")
	g.StringVar(&gen.Out, "out", "-", "the file to write (atomically); - for standard output")
	c.AddCommand(exportCmd, generateCmd)
	return c
}
