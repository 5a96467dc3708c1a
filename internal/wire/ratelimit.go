package wire

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/dunglas/httpsfv"
)

// ErrMalformed is wrapped by the error for a header value that does not follow its format.
var ErrMalformed = errors.New("malformed header")

// RateLimitPolicy is one item of a RateLimit-Policy field (draft-ietf-httpapi-ratelimit-headers):
// `"default";q=10;w=1`, a named quota per window.
type RateLimitPolicy struct {
	// Name names the policy: "default", or a route class's rule.
	Name string
	// Quota is q: the requests the policy admits per window.
	Quota int64
	// Window is w: the window, in whole seconds (rounded up, as the draft has it).
	Window int64
	// WindowMillis is ratelab's exact window in milliseconds (the parameter
	// ratelab-window-ms; 0: not sent), since w cannot say 500ms or 1.5s.
	WindowMillis int64
	// Algorithm is the limiter's algorithm (the parameter ratelab-algorithm, a token;
	// "": not sent).
	Algorithm string
}

// The extension parameters of ratelab's RateLimit-Policy items: other clients ignore
// them, as the draft asks of parameters they do not know.
const (
	ParamWindowMillis = "ratelab-window-ms"
	ParamAlgorithm    = "ratelab-algorithm"
)

// RateLimit is one item of a RateLimit field: `"default";r=5;t=1`, a client's state
// under the named policy.
type RateLimit struct {
	// Name names the policy, as in RateLimitPolicy.
	Name string
	// Remaining is r: the requests left in this window.
	Remaining int64
	// Reset is t: seconds until the quota is fresh again, or until a denied request may retry.
	Reset int64
}

// FormatRateLimitPolicy returns p as a RateLimit-Policy value, `"default";q=10;w=1`.
//
// Both RateLimit fields are structured fields (RFC 8941/9651), and the tests hold these
// bytes to httpsfv.Marshal's. Format appends them itself because it runs on every
// checked request and the library's Marshal (an ordered parameter map, boxed values)
// costs about seven times as much. Name is meant to be printable ASCII, which a
// structured-field string requires; other bytes are left out rather than sent invalid.
func FormatRateLimitPolicy(p RateLimitPolicy) string {
	b := make([]byte, 0, 32)
	b = appendSFString(b, p.Name)
	b = append(b, ";q="...)
	b = strconv.AppendInt(b, p.Quota, 10)
	b = append(b, ";w="...)
	b = strconv.AppendInt(b, p.Window, 10)
	if p.WindowMillis > 0 {
		b = append(b, ";"+ParamWindowMillis+"="...)
		b = strconv.AppendInt(b, p.WindowMillis, 10)
	}
	if token(p.Algorithm) {
		b = append(b, ";"+ParamAlgorithm+"="...)
		b = append(b, p.Algorithm...)
	}
	return string(b)
}

// token reports whether s can be sent as a structured-field token: a letter or '*',
// then letters, digits and the token punctuation.
func token(s string) bool {
	if s == "" || !(isAlpha(s[0]) || s[0] == '*') {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && !('0' <= c && c <= '9') && !strings.ContainsRune("!#$%&'*+-.^_`|~:/", rune(c)) {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// FormatRateLimit returns l as a RateLimit value, `"default";r=5;t=1`, under the same
// rules as FormatRateLimitPolicy.
func FormatRateLimit(l RateLimit) string {
	b := make([]byte, 0, 32)
	b = appendSFString(b, l.Name)
	b = append(b, ";r="...)
	b = strconv.AppendInt(b, l.Remaining, 10)
	b = append(b, ";t="...)
	b = strconv.AppendInt(b, l.Reset, 10)
	return string(b)
}

// ParseRateLimitPolicy reads the policies of RateLimit-Policy header values, as a
// structured-field list. Each item needs a name (a string, or a token) and q; w is 0
// when absent, and parameters it does not know are ignored, as the draft asks.
func ParseRateLimitPolicy(values []string) ([]RateLimitPolicy, error) {
	var out []RateLimitPolicy
	err := parseItems(HeaderRateLimitPolicy, values, func(name string, params *httpsfv.Params) error {
		q, err := intParam(params, "q", true)
		if err != nil {
			return err
		}
		w, err := intParam(params, "w", false)
		if err != nil {
			return err
		}
		wms, err := intParam(params, ParamWindowMillis, false)
		if err != nil {
			return err
		}
		p := RateLimitPolicy{Name: name, Quota: q, Window: w, WindowMillis: wms}
		if v, ok := params.Get(ParamAlgorithm); ok {
			alg, ok := v.(httpsfv.Token)
			if !ok {
				return fmt.Errorf("%s=%v is not a token", ParamAlgorithm, v)
			}
			p.Algorithm = string(alg)
		}
		out = append(out, p)
		return nil
	})
	return out, err
}

// ParseRateLimit reads the items of RateLimit header values, as a structured-field
// list. Each item needs a name and r; t is 0 when absent.
func ParseRateLimit(values []string) ([]RateLimit, error) {
	var out []RateLimit
	err := parseItems(HeaderRateLimit, values, func(name string, params *httpsfv.Params) error {
		r, err := intParam(params, "r", true)
		if err != nil {
			return err
		}
		t, err := intParam(params, "t", false)
		if err != nil {
			return err
		}
		out = append(out, RateLimit{Name: name, Remaining: r, Reset: t})
		return nil
	})
	return out, err
}

// parseItems parses values as a structured-field list and hands each item's name and
// parameters to f.
func parseItems(header string, values []string, f func(name string, params *httpsfv.Params) error) error {
	list, err := httpsfv.UnmarshalList(values)
	if err != nil {
		return fmt.Errorf("%w: %s %q: %w", ErrMalformed, header, values, err)
	}
	for i, m := range list {
		item, ok := m.(httpsfv.Item)
		if !ok {
			return fmt.Errorf("%w: %s %q: member %d is an inner list, not a policy", ErrMalformed, header, values, i)
		}
		var name string
		switch v := item.Value.(type) {
		case string:
			name = v
		case httpsfv.Token:
			name = string(v)
		default:
			return fmt.Errorf("%w: %s %q: member %d names no policy (%T)", ErrMalformed, header, values, i, v)
		}
		if err := f(name, item.Params); err != nil {
			return fmt.Errorf("%w: %s %q: policy %q: %w", ErrMalformed, header, values, name, err)
		}
	}
	return nil
}

// intParam reads a non-negative integer parameter; an absent optional one is 0.
func intParam(params *httpsfv.Params, key string, required bool) (int64, error) {
	v, ok := params.Get(key)
	if !ok {
		if required {
			return 0, fmt.Errorf("no %s parameter", key)
		}
		return 0, nil
	}
	n, ok := v.(int64)
	if !ok || n < 0 {
		return 0, fmt.Errorf("%s=%v is not a non-negative integer", key, v)
	}
	return n, nil
}

// appendSFString appends s as a structured-field string: quoted, with '"' and '\'
// escaped; bytes a string cannot carry (controls, non-ASCII) are left out.
func appendSFString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c < 0x20 || c > 0x7e:
			continue
		case c == '"' || c == '\\':
			b = append(b, '\\')
		}
		b = append(b, c)
	}
	return append(b, '"')
}
