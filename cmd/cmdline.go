package cmd

import (
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ratelab/ratelab/internal/redisconn"
)

// commandLine is the command as parsed, for a report: the command's path and every
// flag that was set, as --name=value, with the password of every URL and the value
// of every secret header redacted.
func commandLine(cmd *cobra.Command) []string {
	out := strings.Fields(cmd.CommandPath())
	visit := func(f *pflag.Flag) {
		if f.Changed {
			out = append(out, "--"+f.Name+"="+redactValue(flagValue(f)))
		}
	}
	cmd.InheritedFlags().VisitAll(visit)
	cmd.LocalNonPersistentFlags().VisitAll(visit)
	return out
}

// flagValue is a flag's value as it would be written on a command line.
func flagValue(f *pflag.Flag) string {
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		return strings.Join(sv.GetSlice(), ",")
	}
	return f.Value.String()
}

// secretHeaders are the headers whose values a report never shows.
var secretHeaders = []string{"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key"}

// redactValue redacts the passwords of the URLs in a flag's value (a comma-separated
// list of them, too) and the value of a secret header ("Authorization: …").
func redactValue(v string) string {
	if name, _, ok := strings.Cut(v, ":"); ok {
		for _, h := range secretHeaders {
			if strings.EqualFold(strings.TrimSpace(name), h) {
				return name + ": xxxxx"
			}
		}
	}
	if !strings.Contains(v, "://") {
		return v
	}
	parts := strings.Split(v, ",")
	for i, p := range parts {
		parts[i] = redisconn.Redact(p)
	}
	return strings.Join(parts, ",")
}
