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
	// KeyByAPIKey identifies a client by its X-API-Key header, hashed with a
	// server secret (algorithms.APIKeyHasher) so the key never reaches Redis in
	// clear and cannot be guessed from what Redis holds.
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

// Identifier says which client a request comes from, for the rate limiter.
type Identifier struct {
	// KeyBy says what identifies a client; empty means KeyByIP.
	KeyBy KeyBy
	// TrustedProxies are the proxies whose X-Forwarded-For is believed (see ClientIP).
	TrustedProxies []netip.Prefix
	// IPv6Prefix groups IPv6 clients by their network of this many bits (see
	// algorithms.IPIdentity); 0 means algorithms.DefaultIPv6Prefix.
	IPv6Prefix int
	// APIKeys hashes API keys into identities; required with KeyByAPIKey.
	APIKeys *algorithms.APIKeyHasher
}

// check fills in the defaults and refuses what cannot identify anyone.
func (id *Identifier) check() error {
	if id.KeyBy == "" {
		id.KeyBy = KeyByIP
	}
	if _, err := ParseKeyBy(string(id.KeyBy)); err != nil {
		return err
	}
	if id.IPv6Prefix == 0 {
		id.IPv6Prefix = algorithms.DefaultIPv6Prefix
	}
	if err := algorithms.CheckIPv6Prefix(id.IPv6Prefix); err != nil {
		return err
	}
	if id.KeyBy == KeyByAPIKey && id.APIKeys == nil {
		return fmt.Errorf("key-by %s needs an API key hasher (a server secret) to hash keys with", KeyByAPIKey)
	}
	return nil
}

// Identity is the rate limiter's identity for r: under KeyByIP the client's address
// (ClientIP), an IPv6 one grouped by its network of IPv6Prefix bits, e.g.
// "2001:db8::/64"; under KeyByAPIKey the X-API-Key header hashed by APIKeys.
func (id Identifier) Identity(r *http.Request) (string, error) {
	if id.KeyBy == KeyByAPIKey {
		key := r.Header.Get(APIKeyHeader)
		switch {
		case key == "":
			return "", fmt.Errorf("%w: the %s header is missing", errIdentity, APIKeyHeader)
		case len(key) > MaxAPIKeyLen:
			return "", fmt.Errorf("%w: the %s header has %d characters; at most %d are allowed", errIdentity, APIKeyHeader, len(key), MaxAPIKeyLen)
		case id.APIKeys == nil:
			return "", fmt.Errorf("%w: this server has no secret to hash API keys with", errIdentity)
		}
		return id.APIKeys.Identity(key), nil
	}
	ip, err := ClientIP(r, id.TrustedProxies)
	if err != nil {
		return "", err
	}
	bits := id.IPv6Prefix
	if bits == 0 {
		bits = algorithms.DefaultIPv6Prefix
	}
	return algorithms.IPIdentity(ip, bits), nil
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
