// Package commands holds the bodies of ratelab's subcommands, free of Cobra: each
// takes an Options struct and an IO, so tests run them with buffers.
package commands

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
)

// Exit statuses, decided in one place (cmd.Main) and documented in every help text.
const (
	ExitOK        = 0 // success
	ExitFailure   = 1 // the command failed: Redis unreachable, a server error
	ExitUsage     = 2 // bad flags or arguments
	ExitThreshold = 3 // a --max-*/--min-* threshold was missed, or --require-valid and the run was not valid

	// ExitInterrupted is hammer's status when SIGINT or SIGTERM stopped it: the report
	// covers what was sent, but the run is not the one asked for (128 + SIGINT, as a shell gives).
	ExitInterrupted = 130

	ExitMissing     = 4 // inspect: the key does not exist
	ExitForeign     = 5 // inspect: the key is not ratelab's (not under --prefix)
	ExitUndecodable = 6 // inspect: the key is under --prefix, but not of a form or content ratelab writes
)

// IO is the streams a command writes to. Nothing else in ratelab writes to a terminal.
type IO struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// IsTerminal reports whether Out is a terminal (tables, colour).
	IsTerminal bool
	// ErrIsTerminal reports whether ErrOut is a terminal (progress bars, prompts).
	ErrIsTerminal bool
	// Width is Out's width in columns when it is a terminal, else 0: tables are laid
	// out to fit it.
	Width int
}

// Global is what every subcommand shares: where Redis is and which keys are ratelab's.
type Global struct {
	// RedisURL is the --redis URL; empty means the embedded Redis.
	RedisURL string
	// Prefix is the --prefix of every key.
	Prefix string
}

// ExitError carries an exit status other than ExitFailure for cmd.Main.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// WithExit wraps err so that ratelab exits with code.
func WithExit(code int, err error) error {
	if err == nil {
		return nil
	}
	return &ExitError{Code: code, Err: err}
}

// UsageError marks err as bad usage: ratelab exits with ExitUsage.
func UsageError(err error) error { return WithExit(ExitUsage, err) }

// Usagef is UsageError with a formatted message.
func Usagef(format string, args ...any) error { return UsageError(fmt.Errorf(format, args...)) }

// ExitCode is the exit status for err: 0 for nil, an ExitError's code, else ExitFailure.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var e *ExitError
	if errors.As(err, &e) {
		return e.Code
	}
	return ExitFailure
}

// Interrupt is the cause (context.Cause) of a context that a signal cancelled: which
// signal, and when it came. cmd.Main cancels with it, so that a command can say when
// it was asked to stop and measure how soon it did.
type Interrupt struct {
	Signal os.Signal
	At     time.Time
}

func (i *Interrupt) Error() string { return "interrupted by " + i.Name() }

// Name is the signal's name: SIGINT, SIGTERM.
func (i *Interrupt) Name() string {
	switch i.Signal {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return i.Signal.String()
}
