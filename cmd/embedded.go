package cmd

import (
	"context"
	"os"
	"os/signal"

	"github.com/spf13/cobra"

	"github.com/ratelab/ratelab/commands"
	"github.com/ratelab/ratelab/internal/redisconn"
)

// embeddedRedisCommand runs hammer's embedded Redis in a child process: this
// executable's hidden embedded-redis subcommand. Main sets it; where it is empty (the
// tests, which run no ratelab executable) the embedded Redis runs in process.
var embeddedRedisCommand []string

// setEmbeddedRedisCommand points embeddedRedisCommand at this executable.
func setEmbeddedRedisCommand() {
	if exe, err := os.Executable(); err == nil {
		embeddedRedisCommand = []string{exe, redisconn.ChildCommand}
	}
}

// runHammer is commands.Hammer with the embedded Redis in a child process, where Main
// set one up.
func runHammer(ctx context.Context, opts commands.HammerOptions, ios commands.IO) error {
	opts.EmbeddedRedisCommand = embeddedRedisCommand
	return commands.Hammer(ctx, opts, ios)
}

// newEmbeddedRedisCmd builds the hidden `ratelab embedded-redis`: the embedded Redis
// for a parent ratelab, which reads its address from standard output and ends it by
// closing standard input.
func newEmbeddedRedisCmd(ios commands.IO) *cobra.Command {
	return &cobra.Command{
		Use:    redisconn.ChildCommand,
		Short:  "The embedded Redis in a process of its own, for hammer (internal)",
		Hidden: true,
		Args:   noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Ctrl-C reaches the whole process group: the parent decides when this
			// Redis ends (its report may still need it), by closing standard input.
			signal.Ignore(os.Interrupt)
			return redisconn.ServeEmbedded(context.WithoutCancel(cmd.Context()), ios.In, ios.Out)
		},
	}
}
