package cmd

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/ratelab/ratelab/commands"
	"github.com/ratelab/ratelab/internal/report"
)

// newLimitsCmd builds `ratelab limits`, whose one verb is check; run is called with
// the validated options (commands.LimitsCheck, or a test's stand-in).
func newLimitsCmd(ios commands.IO, _ *commands.Global, run func(context.Context, commands.LimitsCheckOptions, commands.IO) error) *cobra.Command {
	c := &cobra.Command{
		Use:   "limits",
		Short: "Work with policy files (limits per route and tier)",
		Long: `A policy file says who a client is, which tier it belongs to, and which limits
apply to a request by method, route and tier; serve and hammer take it with
--limits FILE. docs/policies.md has the schema and examples.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var opts commands.LimitsCheckOptions
	check := &cobra.Command{
		Use:   "check FILE",
		Short: "Validate a policy file and show what it enforces",
		Long: `check reads a policy file, reports every problem with its line, and otherwise shows
the rules in the order they are tried (the first that matches decides), each
limit in words, and the file's hash (the one serve's /metrics shows). Keys of
the tiers are counted, never shown.`,
		Example: `  ratelab limits check limits.yaml
  ratelab limits check --output json limits.yaml` + "\n" + exitStatusHelp + `
  (2 also when the file is not valid: each problem is printed as FILE:LINE: reason)`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return commands.Usagef("give one policy file: ratelab limits check FILE (got %d arguments)", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.File = args[0]
			if err := opts.Validate(); err != nil {
				return err
			}
			return run(cmd.Context(), opts, ios)
		},
	}
	check.Flags().StringVarP(&opts.Output, "output", "o", report.FormatTable, "output format: table or json")
	c.AddCommand(check)
	return c
}
