package algorithms

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
)

// MaxIdentityLen bounds an identity as it appears inside a key's hash tag.
const MaxIdentityLen = 128

// ErrInvalidIdentity is wrapped by every error NormalizeIdentity returns.
var ErrInvalidIdentity = errors.New("invalid identity")

// apiKeyPrefix marks an identity made from a hashed API key.
const apiKeyPrefix = "key-"

// The IPv6 prefix lengths by which clients are grouped (see IPIdentity).
const (
	// DefaultIPv6Prefix groups IPv6 clients by their /64: the smallest network a home
	// or mobile connection is given, inside which a client picks addresses freely.
	DefaultIPv6Prefix = 64
	// MinIPv6Prefix is the shortest prefix allowed: a /48 is a whole site.
	MinIPv6Prefix = 48
	// MaxIPv6Prefix keys every IPv6 address on its own.
	MaxIPv6Prefix = 128
)

// ErrInvalidIPv6Prefix is wrapped by the error CheckIPv6Prefix returns.
var ErrInvalidIPv6Prefix = errors.New("invalid IPv6 prefix length")

// CheckIPv6Prefix checks a prefix length for IPIdentity: MinIPv6Prefix to MaxIPv6Prefix.
func CheckIPv6Prefix(bits int) error {
	if bits < MinIPv6Prefix || bits > MaxIPv6Prefix {
		return fmt.Errorf("%w: %d; choose %d to %d (%d groups a client's /%d, %d keys every address apart)",
			ErrInvalidIPv6Prefix, bits, MinIPv6Prefix, MaxIPv6Prefix, DefaultIPv6Prefix, DefaultIPv6Prefix, MaxIPv6Prefix)
	}
	return nil
}

// IPIdentity is the identity of a client at addr when IPv6 clients are grouped by
// their first ipv6Prefix bits: an IPv4 address (IPv4-mapped IPv6 included) is itself,
// e.g. "10.0.0.7"; an IPv6 address is its network in canonical CIDR text, e.g.
// "2001:db8::/64" for 2001:db8::7 at 64, or the address itself at 128. Zones are
// dropped. A length outside CheckIPv6Prefix's range is treated as MaxIPv6Prefix, so
// a mistake never merges clients; callers check it first.
func IPIdentity(addr netip.Addr, ipv6Prefix int) string {
	addr = addr.WithZone("").Unmap()
	if addr.Is4() || ipv6Prefix >= MaxIPv6Prefix || ipv6Prefix < MinIPv6Prefix {
		return addr.String()
	}
	p, err := addr.Prefix(ipv6Prefix)
	if err != nil {
		return addr.String()
	}
	return p.String()
}

// NormalizeIdentity returns the canonical form of a client identity, the one that
// goes into key names. An IP address becomes its canonical text (IPv4-mapped IPv6
// addresses become IPv4; zones are dropped), so 10.0.0.7 and ::ffff:10.0.0.7
// share one key. An IPv6 network of MinIPv6Prefix to MaxIPv6Prefix bits (what
// IPIdentity makes) becomes its canonical CIDR text, host bits cleared, e.g.
// 2001:DB8::7/64 becomes 2001:db8::/64, and a /128 the address alone. Anything else
// must be at most MaxIdentityLen characters of [A-Za-z0-9._:@-]: nothing that could
// close a hash tag, separate key fields, or act as a glob in SCAN MATCH.
func NormalizeIdentity(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalidIdentity)
	}
	if len(s) <= 64 {
		if addr, err := netip.ParseAddr(s); err == nil {
			// A dotted-quad that parses is already canonical (netip refuses leading
			// zeros), and formatting it again would cost an allocation on every check.
			if addr.Is4() {
				return s, nil
			}
			return addr.WithZone("").Unmap().String(), nil
		}
		if strings.IndexByte(s, '/') >= 0 {
			return normalizeNetwork(s)
		}
	}
	if len(s) > MaxIdentityLen {
		return "", fmt.Errorf("%w: %d characters; at most %d are allowed", ErrInvalidIdentity, len(s), MaxIdentityLen)
	}
	for i := 0; i < len(s); i++ {
		if !identityByte(s[i]) {
			return "", fmt.Errorf("%w: %q has the character %q; use letters, digits and . _ : @ -", ErrInvalidIdentity, truncate(s, 40), s[i])
		}
	}
	if looksLikeIP(s) {
		// 010.0.0.7 or 1.2.3 would be a second key for an address, or a key that
		// inspect and flush would take for one.
		return "", fmt.Errorf("%w: %q looks like an IP address but is not one in canonical form", ErrInvalidIdentity, truncate(s, 40))
	}
	return s, nil
}

// looksLikeIP reports whether s, which is not an IP address, is made only of what
// addresses are made of: digits and dots, or hex digits, dots and at least one colon.
func looksLikeIP(s string) bool {
	if strings.Trim(s, "0123456789.") == "" {
		return true
	}
	return strings.IndexByte(s, ':') >= 0 && strings.Trim(s, "0123456789abcdefABCDEF.:") == ""
}

// normalizeNetwork reads an IPv6 network identity such as 2001:db8::/64. Only the
// networks IPIdentity can make are identities: IPv4 networks, IPv4-mapped ones and
// prefixes shorter than MinIPv6Prefix are refused, so '/' never opens the way to
// other names.
func normalizeNetwork(s string) (string, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is6() || p.Addr().Is4In6() || p.Bits() < MinIPv6Prefix {
		return "", fmt.Errorf("%w: %q: a network identity is an IPv6 network of /%d to /%d such as 2001:db8::/%d",
			ErrInvalidIdentity, truncate(s, 40), MinIPv6Prefix, MaxIPv6Prefix, DefaultIPv6Prefix)
	}
	return IPIdentity(p.Addr(), p.Bits()), nil
}

func identityByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("._:@-", c) >= 0
}

// MinAPIKeySecretLen is the shortest secret NewAPIKeyHasher accepts, in bytes.
const MinAPIKeySecretLen = 16

// MaxAPIKeySecretLen is the longest secret NewAPIKeyHasher accepts, in bytes.
const MaxAPIKeySecretLen = 1024

// ErrWeakSecret is wrapped by the error NewAPIKeyHasher returns for a secret it refuses.
var ErrWeakSecret = errors.New("API key secret refused")

// APIKeyHasher turns API keys into identities that never show the key, and that no
// one can test guesses against without the server's secret: "key-" and the first
// 128 bits of HMAC-SHA-256(secret, key), in hex. Every node given one secret makes
// the same identity for one key. It is safe for concurrent use, and it never prints
// its secret (String and LogValue say only that there is one).
type APIKeyHasher struct {
	macs sync.Pool
}

// NewAPIKeyHasher returns a hasher keyed by secret, which must be MinAPIKeySecretLen
// to MaxAPIKeySecretLen bytes; a random one (openssl rand -hex 32) is what it is for.
func NewAPIKeyHasher(secret []byte) (*APIKeyHasher, error) {
	switch {
	case len(secret) < MinAPIKeySecretLen:
		return nil, fmt.Errorf("%w: it has %d bytes; use at least %d random ones, e.g. the output of `openssl rand -hex 32`",
			ErrWeakSecret, len(secret), MinAPIKeySecretLen)
	case len(secret) > MaxAPIKeySecretLen:
		return nil, fmt.Errorf("%w: it has %d bytes; at most %d are allowed", ErrWeakSecret, len(secret), MaxAPIKeySecretLen)
	}
	key := append([]byte(nil), secret...)
	h := &APIKeyHasher{}
	h.macs.New = func() any { return hmac.New(sha256.New, key) }
	return h, nil
}

// Identity is the identity of the client holding apiKey.
func (h *APIKeyHasher) Identity(apiKey string) string {
	mac := h.macs.Get().(hash.Hash)
	mac.Reset()
	mac.Write([]byte(apiKey))
	var sum [sha256.Size]byte
	b := mac.Sum(sum[:0])
	h.macs.Put(mac)
	return apiKeyPrefix + hex.EncodeToString(b[:16])
}

// String says that the hasher has a secret, never what it is.
func (h *APIKeyHasher) String() string { return "APIKeyHasher(HMAC-SHA-256, secret redacted)" }

// LogValue keeps the secret out of logs.
func (h *APIKeyHasher) LogValue() slog.Value { return slog.StringValue(h.String()) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
