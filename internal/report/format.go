package report

// The --output formats: one vocabulary for every command.
const (
	// FormatTable is for a terminal: aligned tables and words (the default).
	FormatTable = "table"
	// FormatJSON is the stable, versioned schema, for scripts.
	FormatJSON = "json"
	// FormatMarkdown is hammer's report as markdown, for a pull request or a wiki.
	FormatMarkdown = "markdown"
)

// Formats lists hammer's output formats, the default first.
func Formats() []string { return []string{FormatTable, FormatJSON, FormatMarkdown, FormatHTML} }

// InspectFormats lists the output formats of inspect and flush, the default first.
func InspectFormats() []string { return []string{FormatTable, FormatJSON} }
