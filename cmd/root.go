// Package cmd wires ratelab's subcommands to Cobra: each newXCmd(ios, g, runF) parses
// its flags into an Options struct, fills in the defaults, validates it once, and calls
// runF (the function in package commands, or a test's stand-in).
package cmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/commands"
	"github.com/ratelab/ratelab/internal/redisconn"
	"github.com/ratelab/ratelab/internal/report"
)

// Version is set at build time with -ldflags "-X github.com/ratelab/ratelab/cmd.Version=…";
// otherwise it comes from the module's build information.
var Version = ""

// exitStatusHelp is the EXIT STATUS section shared by every help text.
const exitStatusHelp = `
EXIT STATUS
  0  success
  1  failure (e.g. Redis unreachable)
  2  bad usage: unknown flag, bad value, wrong arguments
  3  a threshold (--max-*, --min-*) was missed`

// Main runs ratelab with the process's arguments and streams and returns its exit status.
func Main() int {
	ctx, stop := interruptContext()
	defer stop()
	ios := commands.IO{
		In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr,
		IsTerminal:    term.IsTerminal(int(os.Stdout.Fd())),
		ErrIsTerminal: term.IsTerminal(int(os.Stderr.Fd())),
	}
	if ios.IsTerminal {
		if w, _, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
			ios.Width = w
		}
	}
	setEmbeddedRedisCommand()
	return Run(ctx, ios, os.Args[1:])
}

// Run runs ratelab with args on ios and returns its exit status; errors are printed to ios.ErrOut.
func Run(ctx context.Context, ios commands.IO, args []string) int {
	root := NewRoot(ios)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return commands.ExitOK
	}
	code := commands.ExitCode(err)
	if code == commands.ExitFailure && isCobraUsageError(err) {
		code = commands.ExitUsage
	}
	// An error may carry a key name or a server's words: nothing in it may act on
	// the terminal.
	fmt.Fprintf(ios.ErrOut, "ratelab: %s\n", report.ShownMessage(err.Error()))
	if code == commands.ExitUsage {
		fmt.Fprintln(ios.ErrOut, "Run 'ratelab --help' for usage.")
	}
	return code
}

// isCobraUsageError recognises the errors Cobra makes itself for unknown commands and
// wrong arguments (flag errors are marked by the flag error func).
func isCobraUsageError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "accepts ", "requires at least", "requires at most", "invalid argument"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// NewRoot builds the ratelab command tree.
func NewRoot(ios commands.IO) *cobra.Command {
	g := &commands.Global{}
	root := &cobra.Command{
		Use:   "ratelab",
		Short: "A laboratory and load tester for Redis-backed rate limiting and caching",
		Long: `ratelab measures what each rate-limiting algorithm really lets through, at what cost,
when many clients hit many API nodes that share one Redis.

Without --redis (or RATELAB_REDIS_URL) it runs on an embedded in-process Redis,
so it works on a machine with nothing installed.` + "\n" + exitStatusHelp,
		Version:       version(),
		SilenceUsage:  true,
		SilenceErrors: true,
		// Without a subcommand ratelab shows its help; an unknown word is bad usage, not help.
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return commands.Usagef("unknown command %q for \"ratelab\"", args[0])
			}
			return cmd.Help()
		},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := algorithms.NewKeyspace(g.Prefix); err != nil {
				return commands.Usagef("--prefix: %v", err)
			}
			return nil
		},
	}
	root.SetIn(ios.In)
	root.SetOut(ios.Out)
	root.SetErr(ios.ErrOut)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return commands.UsageError(err) })
	root.PersistentFlags().StringVar(&g.RedisURL, "redis", os.Getenv(redisconn.EnvURL),
		"Redis URL (env "+redisconn.EnvURL+"): "+redisconn.URLHelp)
	root.PersistentFlags().Lookup("redis").DefValue = redisconn.Redact(os.Getenv(redisconn.EnvURL)) // --help never shows a password
	root.PersistentFlags().StringVar(&g.Prefix, "prefix", algorithms.DefaultPrefix, "prefix of every key ratelab writes or reads")
	root.CompletionOptions.HiddenDefaultCmd = false
	root.AddCommand(
		newServeCmd(ios, g, commands.Serve),
		newHammerCmd(ios, g, runHammer),
		newSimulateCmd(ios, g, commands.Simulate),
		newTraceCmd(ios, g, commands.TraceExport, commands.TraceGenerate),
		newInspectCmd(ios, g, commands.Inspect),
		newFlushCmd(ios, g, commands.Flush),
		newCompareCmd(ios, g, commands.Compare),
		newLimitsCmd(ios, g, commands.LimitsCheck),
		newEmbeddedRedisCmd(ios),
	)
	return root
}

func version() string {
	if Version != "" {
		return Version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(devel)"
	}
	return versionOf(info)
}

// versionOf is a release's tag, or else the VCS revision the binary was built from
// ("-dirty" when the tree had changes), or "(devel)" when the build has neither.
func versionOf(info *debug.BuildInfo) string {
	var rev string
	modified := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	v := info.Main.Version
	if rev == "" {
		if v == "" {
			return "(devel)"
		}
		return v
	}
	short := rev[:min(12, len(rev))]
	if v != "" && v != "(devel)" && !strings.Contains(v, short) {
		return v // a tagged release
	}
	if modified {
		return short + "-dirty"
	}
	return short
}

// errNoArgs is what a subcommand taking no arguments says when given some.
var errNoArgs = errors.New("this command takes no arguments")

// noArgs is cobra.NoArgs with a usage error.
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return commands.Usagef("%v (got %q)", errNoArgs, args)
	}
	return nil
}
