package commands

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"

	"github.com/ratelab/ratelab/internal/report"
)

// checkOutFile checks --out before anything is sent, so that a run is never lost for
// want of a place to write it: the directory must exist and take a new file, and the
// path must not be a directory.
func checkOutFile(path string) error {
	if path == "" {
		return nil
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return Usagef("--out %s is a directory: give a file name in it, e.g. %s", path, filepath.Join(path, "hammer.json"))
	}
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		return Usagef("--out %s: the directory %s does not exist; create it first", path, dir)
	}
	f, err := os.CreateTemp(dir, ".ratelab-out-check-*")
	if err != nil {
		return Usagef("--out %s: cannot write in %s (%v); choose a directory you may write to", path, dir, errors.Unwrap(err))
	}
	_ = f.Close()
	_ = os.Remove(f.Name())
	return nil
}

// writeReport renders the report in --output's format to Out; with --out, to that file
// instead, atomically (a temporary file in the same directory, renamed over the
// target once complete: renameio), and the table to Out, so that one run gives the
// file CI keeps and the table its log shows.
func writeReport(ios IO, opts HammerOptions, h *report.Hammer) error {
	if opts.OutFile == "" {
		if opts.Output == report.FormatTable {
			return report.HammerTableWidth(ios.Out, h, tableWidth(ios, opts))
		}
		return report.WriteHammer(ios.Out, opts.Output, h)
	}
	if err := writeFileAtomic(opts.OutFile, func(w io.Writer) error { return report.WriteHammer(w, opts.Output, h) }); err != nil {
		return err
	}
	if err := report.HammerTableWidth(ios.Out, h, tableWidth(ios, opts)); err != nil {
		return err
	}
	fmt.Fprintf(ios.ErrOut, "ratelab: report written to %s\n", opts.OutFile)
	return nil
}

// writeFileAtomic writes path through write, atomically: readers see the old file or
// the whole new one, never a part.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	f, err := renameio.NewPendingFile(path, renameio.WithPermissions(0o644))
	if err != nil {
		return fmt.Errorf("--out %s: %w", path, err)
	}
	defer f.Cleanup()
	if err := write(f); err != nil {
		return fmt.Errorf("--out %s: %w", path, err)
	}
	if err := f.CloseAtomicallyReplace(); err != nil {
		return fmt.Errorf("--out %s: %w", path, err)
	}
	return nil
}
