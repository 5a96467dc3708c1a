package commands

import (
	"fmt"
	"io"

	"github.com/ratelab/ratelab/internal/report"
)

// writeSimulateReport renders the report in --output's format to Out; with --out, to
// that file instead, atomically, and the table to Out, as hammer's --out does: one
// run gives the file to keep (an HTML page, the JSON) and the table to read.
func writeSimulateReport(ios IO, opts SimulateOptions, s *report.Simulate) error {
	if opts.OutFile == "" {
		return report.WriteSimulate(ios.Out, opts.Output, s)
	}
	if err := writeFileAtomic(opts.OutFile, func(w io.Writer) error { return report.WriteSimulate(w, opts.Output, s) }); err != nil {
		return err
	}
	if err := report.SimulateTable(ios.Out, s); err != nil {
		return err
	}
	fmt.Fprintf(ios.ErrOut, "ratelab: report written to %s\n", opts.OutFile)
	return nil
}
