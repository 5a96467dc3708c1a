package scenario

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"
)

// What a target is sent and how its answers are read, for any HTTP service on
// loopback: the path, extra headers, how the identity reaches it, and which status
// codes are refusals.

// IdentityMode is how a target learns which simulated client sent a request.
type IdentityMode string

// The identity modes.
const (
	// IdentityForwardedFor puts the identity in X-Forwarded-For; every request comes
	// from hammer's own address, which the target must trust as a proxy.
	IdentityForwardedFor IdentityMode = "xff"
	// IdentitySource sends each identity's requests from its own source address,
	// 127.x.y.z (SourceIdentities), on connections bound to it: the target sees
	// distinct peers and trusts no header. Linux routes the whole 127.0.0.0/8 to the
	// loopback interface, which makes this possible.
	IdentitySource IdentityMode = "source"
)

// IdentityModes lists the identity modes, the default first.
func IdentityModes() []string { return []string{string(IdentityForwardedFor), string(IdentitySource)} }

// CheckIdentityMode refuses a mode that is not one of IdentityModes ("" is the default).
func CheckIdentityMode(m IdentityMode) error {
	if m == "" || slices.Contains(IdentityModes(), string(m)) {
		return nil
	}
	return fmt.Errorf("identity %q: choose %s", m, strings.Join(IdentityModes(), " or "))
}

// DefaultPath is the path template of ratelab's Product API.
const DefaultPath = "/products/{product}"

// productPlaceholder is where a path template takes the request's product number.
const productPlaceholder = "{product}"

// PathTemplate is a request path with {product} where each request's product number
// (1..--products, Zipf popular) goes: "/api/items/{product}?v=2".
type PathTemplate struct {
	// parts are the literal text around the placeholders: one more than there are
	// placeholders.
	parts []string
}

// ParsePathTemplate reads a path template: it starts with "/", may carry a query, and
// holds no space or control character and no placeholder but {product}. The empty
// string is DefaultPath.
func ParsePathTemplate(s string) (PathTemplate, error) {
	if s == "" {
		s = DefaultPath
	}
	if !strings.HasPrefix(s, "/") {
		return PathTemplate{}, fmt.Errorf("path %q must start with /", s)
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r == '#' {
			return PathTemplate{}, fmt.Errorf("path %q holds %q: escape it (%%20 for a space); a path has no spaces, control characters or fragment", s, r)
		}
	}
	parts := strings.Split(s, productPlaceholder)
	for _, p := range parts {
		if i := strings.IndexAny(p, "{}"); i >= 0 {
			return PathTemplate{}, fmt.Errorf("path %q: unknown placeholder near %q; the one placeholder is %s", s, p[i:], productPlaceholder)
		}
	}
	return PathTemplate{parts: parts}, nil
}

// Expand is the path of a request for product.
func (p PathTemplate) Expand(product int32) string { return string(p.append(nil, product)) }

func (p PathTemplate) append(b []byte, product int32) []byte {
	for i, part := range p.parts {
		if i > 0 {
			b = strconv.AppendInt(b, int64(product), 10)
		}
		b = append(b, part...)
	}
	return b
}

// Header is one extra request header, sent on every request.
type Header struct {
	Name, Value string
}

// reservedHeaders are the headers hammer writes itself or that would change the
// framing of its keep-alive GETs: -H cannot set them.
var reservedHeaders = []string{"Connection", "Content-Length", "Expect", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// ParseHeader reads "Name: value", as curl's -H: the name a valid token, the value
// (trimmed) without CR, LF or NUL.
func ParseHeader(s string) (Header, error) {
	name, value, ok := strings.Cut(s, ":")
	if !ok {
		return Header{}, fmt.Errorf("header %q: write it as 'Name: value'", s)
	}
	h := Header{Name: name, Value: strings.TrimSpace(value)}
	return h, h.Check()
}

// Check refuses a header that is not a valid token name with a value free of CR, LF
// and NUL, or one that hammer writes itself.
func (h Header) Check() error {
	if h.Name == "" || strings.IndexFunc(h.Name, func(r rune) bool { return !isTokenChar(r) }) >= 0 {
		return fmt.Errorf("header name %q is not a valid token: letters, digits and !#$%%&'*+-.^_`|~ only, no spaces", h.Name)
	}
	if strings.ContainsAny(h.Value, "\r\n\x00") {
		return fmt.Errorf("header %s: its value holds a CR, LF or NUL; a header is one line", h.Name)
	}
	canon := textproto.CanonicalMIMEHeaderKey(h.Name)
	if slices.Contains(reservedHeaders, canon) {
		return fmt.Errorf("header %s is hammer's own (it sends keep-alive GETs without a body); drop it", canon)
	}
	return nil
}

// IsForwardedFor reports the X-Forwarded-For header, which carries the identity
// unless identities go as source addresses.
func (h Header) IsForwardedFor() bool {
	return textproto.CanonicalMIMEHeaderKey(h.Name) == "X-Forwarded-For"
}

// isTokenChar reports an RFC 9110 tchar.
func isTokenChar(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	}
	return r < 0x80 && strings.ContainsRune("!#$%&'*+-.^_`|~", r)
}

// DefaultDenyStatus is the status code a refusal answers with unless told otherwise.
const DefaultDenyStatus = http.StatusTooManyRequests

// CheckDenyStatus refuses a status code that cannot be a refusal (below 300, above 599).
func CheckDenyStatus(code int) error {
	if code < 300 || code > 599 {
		return fmt.Errorf("status %d cannot mean denied: choose codes from 300 to 599 (e.g. 429,403)", code)
	}
	return nil
}

// TargetConfig is what NewTarget needs.
type TargetConfig struct {
	// Bases are the targets' base URLs (http or https, loopback only); a base's path
	// goes before Path.
	Bases []string
	// Identities are the simulated clients: 10.x.y.z (Identities) with
	// IdentityForwardedFor, 127.x.y.z (SourceIdentities) with IdentitySource.
	Identities []string
	// Conns is how many connections to open over every node (at least one per node,
	// and with IdentitySource at least one per node and identity).
	Conns int
	// Timeout bounds each request.
	Timeout time.Duration
	// Path is the path template (ParsePathTemplate); "" is DefaultPath.
	Path string
	// Headers are sent on every request; a Host or User-Agent here replaces hammer's.
	Headers []Header
	// Identity is how the identity reaches the target ("" is IdentityForwardedFor).
	Identity IdentityMode
	// DenyStatus are the status codes that mean denied (nil: DefaultDenyStatus).
	DenyStatus []int
	// IdentityHeaders, when set, are each identity's own request headers, indexed
	// like Identities (a client tier's API key, say: see TierTally).
	IdentityHeaders [][]Header
}

// check validates c and reads its path template.
func (c TargetConfig) check() (PathTemplate, error) {
	if len(c.Bases) == 0 {
		return PathTemplate{}, errors.New("no target URL")
	}
	if err := CheckIdentityMode(c.Identity); err != nil {
		return PathTemplate{}, err
	}
	path, err := ParsePathTemplate(c.Path)
	if err != nil {
		return PathTemplate{}, err
	}
	for _, h := range c.Headers {
		if err := h.Check(); err != nil {
			return PathTemplate{}, err
		}
		if c.Identity != IdentitySource && h.IsForwardedFor() {
			return PathTemplate{}, errors.New("header X-Forwarded-For carries the identity; drop it, or send identities as source addresses")
		}
	}
	for _, code := range c.DenyStatus {
		if err := CheckDenyStatus(code); err != nil {
			return PathTemplate{}, err
		}
	}
	if len(c.IdentityHeaders) > 0 && len(c.IdentityHeaders) != len(c.Identities) {
		return PathTemplate{}, fmt.Errorf("%d identities' headers for %d identities", len(c.IdentityHeaders), len(c.Identities))
	}
	for _, hs := range c.IdentityHeaders {
		for _, h := range hs {
			if err := h.Check(); err != nil {
				return PathTemplate{}, err
			}
		}
	}
	if c.Identity == IdentitySource {
		for _, id := range c.Identities {
			if a, err := netip.ParseAddr(id); err != nil || !a.Is4() || !a.IsLoopback() {
				return PathTemplate{}, fmt.Errorf("identity %q is not a 127.x.y.z address, which source identities are", id)
			}
		}
	}
	return path, nil
}

// classify is the decision an answer carries: a status of the deny list is denied;
// any other status below 400 allowed; a 4xx or 5xx that carries a RateLimit header
// saying no request remains (as a 403 from an API that refuses that way) denied; any
// other answer failed.
func (t *HTTPTarget) classify(code int, h http.Header) Status {
	switch {
	case slices.Contains(t.deny, code):
		return Denied
	case code < 400:
		return Allowed
	case quotaExhausted(h):
		return Denied
	}
	return Failed
}

// quotaExhausted reports an answer whose rate-limit headers say no request remains:
// the IETF draft's `RateLimit: "name";r=0;t=…` (draft 8 on), its earlier
// RateLimit-Remaining, or the common X-RateLimit-Remaining.
func quotaExhausted(h http.Header) bool {
	for _, v := range h.Values("RateLimit") {
		for item := range strings.SplitSeq(v, ",") {
			for p := range strings.SplitSeq(item, ";") {
				if r, ok := strings.CutPrefix(strings.TrimSpace(p), "r="); ok && r == "0" {
					return true
				}
			}
		}
	}
	for _, name := range []string{"RateLimit-Remaining", "X-RateLimit-Remaining"} {
		if v := strings.TrimSpace(h.Get(name)); v != "" {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n <= 0 {
				return true
			}
		}
	}
	return false
}
