package commands

import (
	"fmt"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/productapi"
)

// EnvAPIKeySecret is the environment variable that holds the secret API keys are
// hashed with, when --api-key-secret is not given. The environment is the better
// place: a flag's value shows in ps and in shell history.
const EnvAPIKeySecret = "RATELAB_API_KEY_SECRET"

// APIKeySecretHelp says what the secret is for, for flag help texts.
const APIKeySecretHelp = "secret that API keys are hashed with (HMAC-SHA-256), at least 16 bytes, e.g. $(openssl rand -hex 32); " +
	"prefer env " + EnvAPIKeySecret + ", since a flag shows in ps"

// CheckIPv6PrefixFlag checks an --ipv6-prefix value.
func CheckIPv6PrefixFlag(bits int) error {
	if err := algorithms.CheckIPv6Prefix(bits); err != nil {
		return Usagef("--ipv6-prefix: %v", err)
	}
	return nil
}

// NewAPIKeyHasher makes the hasher of --api-key-secret (or EnvAPIKeySecret); what
// names the flag that needs it, for the error. The error is a usage error that never
// shows the secret.
func NewAPIKeyHasher(secret, what string) (*algorithms.APIKeyHasher, error) {
	if secret == "" {
		return nil, Usagef("%s needs the secret API keys are hashed with: set %s (or --api-key-secret) to at least %d random bytes, "+
			"e.g. export %s=$(openssl rand -hex 32), the same on every node and for inspect and flush",
			what, EnvAPIKeySecret, algorithms.MinAPIKeySecretLen, EnvAPIKeySecret)
	}
	h, err := algorithms.NewAPIKeyHasher([]byte(secret))
	if err != nil {
		return nil, Usagef("--api-key-secret (or %s): %v", EnvAPIKeySecret, err)
	}
	return h, nil
}

// validateIdentity checks how serve identifies clients: the IPv6 prefix, and a
// secret whenever clients are identified by API key. Without a secret, --key-by
// api-key is refused rather than given a generated one: a secret kept in Redis
// would sit beside the hashes it protects, for anyone who reads Redis to use.
func (o *ServeOptions) validateIdentity() error {
	if o.IPv6Prefix != 0 {
		if err := CheckIPv6PrefixFlag(o.IPv6Prefix); err != nil {
			return err
		}
	}
	if o.KeyBy == productapi.KeyByAPIKey {
		if _, err := NewAPIKeyHasher(o.APIKeySecret, fmt.Sprintf("--key-by %s", productapi.KeyByAPIKey)); err != nil {
			return err
		}
	}
	return nil
}
