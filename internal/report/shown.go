package report

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxShown is how many bytes of one name or value the table views show; the rest is
// cut, with a count of what was cut.
const MaxShown = 200

// Shown is s as a terminal may show it: as it is when it is valid UTF-8 of printable
// characters, else quoted with Go's escapes (so a key name with an escape sequence,
// a line break or a bidirectional override cannot act on the terminal or break the
// layout), and cut after MaxShown bytes with a count of the rest. Every key name,
// identity and stored value a table view prints goes through it.
func Shown(s string) string {
	cut := 0
	if len(s) > MaxShown {
		n := MaxShown
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s, cut = s[:n], len(s)-n
	}
	if !printable(s) {
		s = strconv.Quote(s)
	}
	if cut > 0 {
		s += "… (" + strconv.Itoa(cut) + " more bytes)"
	}
	return s
}

// ShownMessage is a message (an error, a log line) as a terminal may show it: every
// character that is not printable is replaced by its Go escape, the rest kept as it
// is, so that the message reads as before unless something in it would act on the
// terminal.
func ShownMessage(s string) string {
	if printable(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			b.WriteString(`\x` + strconv.FormatUint(uint64(s[i]), 16))
		case unicode.IsPrint(r):
			b.WriteString(s[i : i+size])
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return b.String()
}

// printable reports whether s is valid UTF-8 of printable characters (the space
// included; tabs, line breaks and every other control character not).
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c >= 0x7f {
			return printableRunes(s[i:])
		}
	}
	return true
}

func printableRunes(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return false
		}
	}
	return utf8.ValidString(s)
}
