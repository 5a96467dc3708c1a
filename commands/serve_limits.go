package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/policy"
	"github.com/ratelab/ratelab/internal/productapi"
	"github.com/ratelab/ratelab/internal/report"
)

// loadServeLimits reads --limits FILE for serve: the policy, and the API key hasher
// its identity needs. A file that is not valid is bad usage, its problems written
// to errOut one a line.
func loadServeLimits(opts ServeOptions, ios IO) (*policy.Policy, *algorithms.APIKeyHasher, error) {
	p, err := policy.Load(opts.LimitsFile)
	var bad *policy.Error
	if errors.As(err, &bad) {
		if werr := report.WriteProblems(ios.ErrOut, bad.Problems); werr != nil {
			return nil, nil, werr
		}
		return nil, nil, Usagef("--limits %s is not a valid policy file (see above); check it with ratelab limits check", opts.LimitsFile)
	}
	if err != nil {
		return nil, nil, err
	}
	var keys *algorithms.APIKeyHasher
	if p.Identity.Kind == policy.IdentityAPIKey {
		if keys, err = NewAPIKeyHasher(opts.APIKeySecret, "identity: api-key in --limits"); err != nil {
			return nil, nil, err
		}
	}
	return p, keys, nil
}

// hangups is a channel with a value for each SIGHUP until ctx is done. The signal is
// caught from the moment it returns: a SIGHUP never stops the server.
func hangups(ctx context.Context) <-chan struct{} {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ch := make(chan struct{})
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				select {
				case ch <- struct{}{}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return ch
}

// reloadLimits reloads --limits FILE on each value of reload until ctx is done: an
// invalid file is logged, problem by problem, and refused; the file in force stays.
func reloadLimits(ctx context.Context, opts ServeOptions, reload <-chan struct{}, ps *productapi.Policies, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-reload:
			if !ok {
				return
			}
		}
		err := ps.ReloadFile(opts.LimitsFile)
		var bad *policy.Error
		switch {
		case errors.As(err, &bad):
			for _, p := range bad.Problems {
				log.Error("policy file refused; the one in force stays", "problem", report.Shown(p.String()))
			}
		case err != nil:
			log.Error("policy file refused; the one in force stays", "file", opts.LimitsFile, "err", err)
		default:
			cur := ps.Current()
			log.Info("policy file reloaded", "file", opts.LimitsFile, "sha256", cur.Hash, "rules", len(cur.Rules))
		}
		if opts.Reloaded != nil {
			opts.Reloaded(err)
		}
	}
}

// limitsAttrs are the start line's words for a policy file.
func limitsAttrs(opts ServeOptions, p *policy.Policy) []any {
	return []any{"limits", opts.LimitsFile, "sha256", p.Hash, "rules", len(p.Rules), "identity", p.Identity.Kind,
		"reload", fmt.Sprintf("kill -HUP %d", os.Getpid())}
}
