package commands

// tableWidth is the width the table on Out is laid out for: --width, else the
// terminal's; 0 (the full layout) with --wide or off a terminal, so that a file or a
// CI log gets every column.
func tableWidth(ios IO, opts HammerOptions) int {
	switch {
	case opts.Wide:
		return 0
	case opts.Width > 0:
		return opts.Width
	}
	return ios.Width
}
