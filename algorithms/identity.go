package algorithms

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// MaxIdentityLen bounds an identity as it appears inside a key's hash tag.
const MaxIdentityLen = 128

// ErrInvalidIdentity is wrapped by every error NormalizeIdentity returns.
var ErrInvalidIdentity = errors.New("invalid identity")

// apiKeyPrefix marks an identity made from a hashed API key.
const apiKeyPrefix = "key-"

// NormalizeIdentity returns the canonical form of a client identity, the one that
// goes into key names. An IP address becomes its canonical text (IPv4-mapped IPv6
// addresses become IPv4; zones are dropped), so 10.0.0.7 and ::ffff:10.0.0.7
// share one key. Anything else must be at
// most MaxIdentityLen characters of [A-Za-z0-9._:@-]: nothing that could close a
// hash tag, separate key fields, or act as a glob in SCAN MATCH.
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
	}
	if len(s) > MaxIdentityLen {
		return "", fmt.Errorf("%w: %d characters; at most %d are allowed", ErrInvalidIdentity, len(s), MaxIdentityLen)
	}
	for i := 0; i < len(s); i++ {
		if !identityByte(s[i]) {
			return "", fmt.Errorf("%w: %q has the character %q; use letters, digits and . _ : @ -", ErrInvalidIdentity, truncate(s, 40), s[i])
		}
	}
	return s, nil
}

func identityByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("._:@-", c) >= 0
}

// APIKeyIdentity turns an API key into an identity that never shows the key:
// "key-" and the first 128 bits of its SHA-256, in hex.
func APIKeyIdentity(apiKey string) string {
	sum := sha256.Sum256([]byte(apiKey))
	return apiKeyPrefix + hex.EncodeToString(sum[:16])
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
