package cmd

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/ratelab/ratelab/commands"
	"github.com/ratelab/ratelab/internal/report"
)

// newFlushCmd builds `ratelab flush`; run is called with the normalized, validated
// options (commands.Flush, or a test's stand-in).
func newFlushCmd(ios commands.IO, g *commands.Global, run func(context.Context, commands.FlushOptions, commands.IO) error) *cobra.Command {
	var opts commands.FlushOptions
	var id identityFlags
	c := &cobra.Command{
		Use:   "flush",
		Short: "Delete ratelab's keys, and nothing else",
		Long: `flush deletes the keys ratelab wrote under --prefix: limiter state (rl), cached
products and their fill locks (cache), or both (all, the default). --algorithm and
--ip/--key-id/--api-key narrow it to some limiter keys.

It finds keys with SCAN (COUNT 1000) on every master of a cluster and deletes them
with UNLINK in batches, so Redis keeps serving meanwhile; never KEYS, FLUSHDB or
FLUSHALL. The prefix's glob characters are escaped, and every key is decoded before
it is deleted: keys outside the prefix always survive, including look-alikes such as
ratelabx:…, and keys under the prefix that are not of a form ratelab writes are
listed and left alone.

--dry-run lists what would go. On a terminal flush asks before deleting more than 10
keys; off a terminal it deletes only with --yes.`,
		Example: `  ratelab flush --redis redis://127.0.0.1:6379 --dry-run
  ratelab flush --redis redis://127.0.0.1:6379 --yes
  ratelab flush --redis redis://127.0.0.1:6379 --kind rl --algorithm fixed-window --yes
  ratelab flush --redis redis://127.0.0.1:6379 --ip 10.0.0.7 --yes
  ratelab flush --redis redis://10.0.0.1:7000,10.0.0.2:7000 --kind cache --yes --output json` + "\n" + exitStatusHelp,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Global = *g
			identity, err := id.resolve()
			if err != nil {
				return err
			}
			opts.Identity = identity
			opts.Normalize()
			if err := opts.Validate(); err != nil {
				return err
			}
			return run(cmd.Context(), opts, ios)
		},
	}
	f := c.Flags()
	f.StringVar(&opts.Kind, "kind", "", "what to delete: rl (limiter state), cache (products and their fill locks) or all (default all; rl with --algorithm or an identity)")
	f.StringVar(&opts.Algorithm, "algorithm", "", "delete only the limiter keys of this algorithm")
	id.register(f, "delete only the limiter keys of")
	f.BoolVar(&opts.DryRun, "dry-run", false, "list what would be deleted; delete nothing")
	f.BoolVarP(&opts.Yes, "yes", "y", false, "delete without asking (required off a terminal)")
	f.StringVarP(&opts.Output, "output", "o", report.FormatTable, "output format: table or json")
	f.IntVar(&opts.BatchSize, "batch", commands.DefaultFlushBatch, "keys deleted per UNLINK (per pipeline on a cluster)")
	return c
}
