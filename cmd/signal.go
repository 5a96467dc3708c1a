package cmd

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ratelab/ratelab/commands"
)

// interruptContext is a context that the first SIGINT or SIGTERM cancels, with a
// commands.Interrupt as its cause: the signal and when it came. After that first
// signal the default handling is back, so a second Ctrl-C ends ratelab at once.
func interruptContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case s := <-sigs:
			at := time.Now()
			signal.Stop(sigs)
			cancel(&commands.Interrupt{Signal: s, At: at})
		case <-ctx.Done():
			signal.Stop(sigs)
		}
	}()
	return ctx, func() { cancel(context.Canceled) }
}
