package report

import (
	"strings"
	"testing"
)

func TestShown(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"ratelab:rl:gcra:10r1s:{10.0.0.7}", "ratelab:rl:gcra:10r1s:{10.0.0.7}"},
		{"produit été", "produit été"},
		{"ratelab:\x1b[31mred", `"ratelab:\x1b[31mred"`},
		{"two\nlines", `"two\nlines"`},
		{"tab\there", `"tab\there"`},
		{"del\x7f", `"del\x7f"`},
		{"c1 \u009b31m", `"c1 \u009b31m"`},
		{"bidi \u202egnp.exe", `"bidi \u202egnp.exe"`},
		{"bad \xff utf-8", `"bad \xff utf-8"`},
		{strings.Repeat("k", MaxShown+50), strings.Repeat("k", MaxShown) + "… (50 more bytes)"},
	}
	for _, tt := range tests {
		if got := Shown(tt.in); got != tt.want {
			t.Errorf("Shown(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
	// A cut never splits a character.
	long := strings.Repeat("é", MaxShown)
	if got := Shown(long); !strings.HasSuffix(got, " more bytes)") || strings.ContainsRune(got, '\uFFFD') || strings.HasPrefix(got, `"`) {
		t.Errorf("Shown of %d bytes of é: %q", len(long), got)
	}
}

func TestShownMessage(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{`not a ratelab key: "x" is not under the prefix`, `not a ratelab key: "x" is not under the prefix`},
		{"ERR \x1b]0;owned\x07 title", `ERR \x1b]0;owned\a title`},
		{"line\nbreak", `line\nbreak`},
		{"bad \xfe byte", `bad \xfe byte`},
	}
	for _, tt := range tests {
		if got := ShownMessage(tt.in); got != tt.want {
			t.Errorf("ShownMessage(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}
