package productapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/ratelab/ratelab/algorithms"
)

// KeyBy says what identifies a client to the rate limiter.
type KeyBy string

// The ways to identify a client.
const (
	// KeyByIP identifies a client by its IP address (see ClientIP).
	KeyByIP KeyBy = "ip"
	// KeyByAPIKey identifies a client by its X-API-Key header, hashed with
	// algorithms.APIKeyIdentity so the key never reaches Redis in clear.
	KeyByAPIKey KeyBy = "api-key"
)

// ParseKeyBy checks a --key-by value.
func ParseKeyBy(s string) (KeyBy, error) {
	switch k := KeyBy(s); k {
	case KeyByIP, KeyByAPIKey:
		return k, nil
	}
	return "", fmt.Errorf("key-by %q: choose %q or %q", s, KeyByIP, KeyByAPIKey)
}

// APIKeyHeader carries the API key when clients are identified by key.
const APIKeyHeader = "X-API-Key"

// MaxAPIKeyLen bounds an API key; longer ones are refused, not hashed.
const MaxAPIKeyLen = 256

// maxForwardedEntries bounds the X-Forwarded-For entries read from a trusted proxy.
const maxForwardedEntries = 64

// errIdentity is wrapped by the errors a client gets for a request that cannot be identified.
var errIdentity = errors.New("cannot identify the client")

// ParseTrustedProxies reads CIDRs (or single addresses) such as "10.0.0.0/8" or "::1".
func ParseTrustedProxies(values []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range values {
		for _, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			if p, err := netip.ParsePrefix(s); err == nil {
				out = append(out, p.Masked())
				continue
			}
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q is neither a CIDR (10.0.0.0/8) nor an address (10.0.0.1)", s)
			}
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out, nil
}

// ClientIP is the address of the client that sent r: the connection's address, unless
// that address is a trusted proxy; then X-Forwarded-For is read from the right, and the
// first address that is not a trusted proxy is the client (the left-most one if all
// are). A header from an untrusted connection is ignored, however it looks; a malformed
// one from a trusted proxy is an error.
func ClientIP(r *http.Request, trusted []netip.Prefix) (netip.Addr, error) {
	peer, err := parseHostAddr(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: connection address %q: %v", errIdentity, r.RemoteAddr, err)
	}
	if !isTrusted(peer, trusted) {
		return peer, nil
	}
	var entries []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		for _, e := range strings.Split(h, ",") {
			entries = append(entries, strings.TrimSpace(e))
		}
	}
	if len(entries) == 0 {
		return peer, nil
	}
	if len(entries) > maxForwardedEntries {
		return netip.Addr{}, fmt.Errorf("%w: X-Forwarded-For has %d entries; at most %d are read", errIdentity, len(entries), maxForwardedEntries)
	}
	client := peer
	for i := len(entries) - 1; i >= 0; i-- {
		a, err := parseHostAddr(entries[i])
		if err != nil {
			return netip.Addr{}, fmt.Errorf("%w: X-Forwarded-For entry %q is not an IP address", errIdentity, truncate(entries[i], 60))
		}
		client = a
		if !isTrusted(a, trusted) {
			break
		}
	}
	return client, nil
}

// Identity is the rate limiter's identity for r under keyBy.
func Identity(r *http.Request, keyBy KeyBy, trusted []netip.Prefix) (string, error) {
	if keyBy == KeyByAPIKey {
		key := r.Header.Get(APIKeyHeader)
		switch {
		case key == "":
			return "", fmt.Errorf("%w: the %s header is missing", errIdentity, APIKeyHeader)
		case len(key) > MaxAPIKeyLen:
			return "", fmt.Errorf("%w: the %s header has %d characters; at most %d are allowed", errIdentity, APIKeyHeader, len(key), MaxAPIKeyLen)
		}
		return algorithms.APIKeyIdentity(key), nil
	}
	ip, err := ClientIP(r, trusted)
	if err != nil {
		return "", err
	}
	return ip.String(), nil
}

// parseHostAddr reads "1.2.3.4", "1.2.3.4:80", "::1", "[::1]:80", dropping zones and
// unmapping IPv4-in-IPv6.
func parseHostAddr(s string) (netip.Addr, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().WithZone("").Unmap(), nil
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		return netip.Addr{}, err
	}
	return a.WithZone("").Unmap(), nil
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
