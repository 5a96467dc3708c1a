package commands

import (
	"compress/gzip"
	"context"
	"io"
	"strconv"
	"time"

	"github.com/ratelab/ratelab/internal/trace"
	"github.com/ratelab/ratelab/scenario"
)

// TraceExportOptions is everything `ratelab trace export` is told.
type TraceExportOptions struct {
	// Traffic and Limit/Window make hammer's schedule (the window sets where the
	// boundary attackers burst).
	Traffic
	Limit  int64
	Window time.Duration
	// Format is trace.FormatCSV or trace.FormatJSON; Out the file ("-" for standard output).
	Format string
	Out    string
}

// TraceExport writes hammer's synthetic schedule as a trace: the requests of
// `simulate --pattern`, at the same virtual times, from the same identities, to
// share, edit and replay.
func TraceExport(ctx context.Context, opts TraceExportOptions, ios IO) error {
	if opts.Format != trace.FormatCSV && opts.Format != trace.FormatJSON {
		return Usagef("--format %q: choose %s or %s", opts.Format, trace.FormatCSV, trace.FormatJSON)
	}
	sim := SimulateOptions{Traffic: opts.Traffic, Limits: []int64{opts.Limit}, Windows: []time.Duration{opts.Window},
		Algorithms: []string{"gcra"}, Nodes: 1, Store: "redis", Balancer: "round-robin", Output: "table"}
	if err := sim.Validate(); err != nil {
		return err
	}
	sched, err := scenario.Build(scenario.Config{Pattern: opts.Pattern, IPs: opts.IPs, RPS: opts.RPS, Duration: opts.Duration,
		Seed: opts.Seed, Products: opts.Products, Limit: opts.Limit, Window: opts.Window})
	if err != nil {
		return UsageError(err)
	}
	ids, err := scenario.Identities(opts.IPs, 0)
	if err != nil {
		return UsageError(err)
	}
	w := opts.Window.Microseconds()
	base := (SimulateEpoch.UnixMicro() + w - 1) / w * w
	return writeOut(ios, opts.Out, func(out io.Writer) error {
		tw, err := trace.NewWriter(out, opts.Format)
		if err != nil {
			return err
		}
		for i, a := range sched.Arrivals {
			if i%progressEvery == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			req := trace.Request{Time: base + a.At.Microseconds(), Client: ids[a.Identity], Method: "GET",
				Route: "/products/" + strconv.Itoa(int(a.Product))}
			if err := tw.Write(req); err != nil {
				return err
			}
		}
		return tw.Flush()
	})
}

// TraceGenerateOptions is everything `ratelab trace generate` is told.
type TraceGenerateOptions struct {
	trace.GenConfig
	// Gzip compresses the log; Out is the file ("-" for standard output).
	Gzip bool
	Out  string
}

// TraceGenerate writes a seeded, realistic combined access log (trace.Generate).
func TraceGenerate(_ context.Context, opts TraceGenerateOptions, ios IO) error {
	if opts.Clients < 10 || opts.Lines < 1 || opts.BadEvery < 0 {
		return Usagef("--clients %d, --lines %d, --bad-every %d: at least 10 clients and 1 line, and --bad-every not negative",
			opts.Clients, opts.Lines, opts.BadEvery)
	}
	return writeOut(ios, opts.Out, func(out io.Writer) error {
		if !opts.Gzip {
			return trace.Generate(out, opts.GenConfig)
		}
		zw := gzip.NewWriter(out)
		if err := trace.Generate(zw, opts.GenConfig); err != nil {
			return err
		}
		return zw.Close()
	})
}

// writeOut writes through write to standard output ("-") or to the file path,
// atomically.
func writeOut(ios IO, path string, write func(io.Writer) error) error {
	if path == "-" || path == "" {
		return write(ios.Out)
	}
	if err := checkOutFile(path); err != nil {
		return err
	}
	return writeFileAtomic(path, write)
}
