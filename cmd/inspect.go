package cmd

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/commands"
	"github.com/ratelab/ratelab/internal/report"
)

// inspectExitHelp is the EXIT STATUS section of inspect: the shared codes and its own.
const inspectExitHelp = exitStatusHelp + `
  4  no such key (it may have expired)
  5  the key is not ratelab's: it is not under --prefix
  6  the key is under --prefix, but its name or content is not of a form ratelab writes`

// newInspectCmd builds `ratelab inspect`; run is called with the normalized, validated
// options (commands.Inspect, or a test's stand-in).
func newInspectCmd(ios commands.IO, g *commands.Global, run func(context.Context, commands.InspectOptions, commands.IO) error) *cobra.Command {
	var opts commands.InspectOptions
	var id identityFlags
	c := &cobra.Command{
		Use:   "inspect [KEY]",
		Short: "Show what a limiter or cache key holds, in words",
		Long: `inspect reads ratelab's keys in Redis and says what they mean.

With a KEY it shows the key's type, TTL and raw content, and the state in words,
decoded from the key name (algorithm, policy, identity) and the content at the
Redis server's TIME, e.g.
  fixed-window 10/1s for 10.0.0.7: 7 used, 3 left, window resets in 412 ms
For a cached product it shows the JSON, its TTL and whether its fill lock is held.

With --ip, --key-id or --api-key it decodes every limiter key of that identity.
With neither it summarises everything under --prefix: keys per kind and algorithm,
memory (MEMORY USAGE, estimated from a sample of --sample keys above that), and the
keys without a TTL, which must be none.

It reads with SCAN on every master of a cluster, never KEYS. --output json writes the
same as JSON with stable field names (see the README).`,
		Example: `  ratelab inspect --redis redis://127.0.0.1:6379
  ratelab inspect --redis redis://127.0.0.1:6379 'ratelab:rl:token-bucket:10r1s-b20:{10.0.0.7}'
  ratelab inspect --redis redis://127.0.0.1:6379 --ip 10.0.0.7 --output json
  ratelab inspect --redis redis://127.0.0.1:6379 --ip 2001:db8::7          # its /64: {2001:db8::/64}
  RATELAB_API_KEY_SECRET=… ratelab inspect --redis redis://127.0.0.1:6379 --api-key sk_live_42
  ratelab inspect --redis redis://127.0.0.1:6379 'ratelab:product:{42}'` + "\n" + inspectExitHelp,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Global = *g
			if len(args) == 1 {
				opts.Key = args[0]
				if opts.Key == "" {
					return commands.Usagef("the KEY is empty; give a key name, or none for a summary")
				}
			}
			identity, err := id.resolve()
			if err != nil {
				return err
			}
			opts.Identity = identity
			opts.Normalize()
			if err := opts.Validate(); err != nil {
				return err
			}
			return run(cmd.Context(), opts, ios)
		},
	}
	f := c.Flags()
	f.StringVarP(&opts.Output, "output", "o", report.FormatTable, "output format: table or json")
	f.IntVar(&opts.MemorySample, "sample", commands.DefaultMemorySample, "read MEMORY USAGE of at most this many keys; estimate the total above that")
	id.register(f, "list every limiter key of")
	return c
}

// identityFlags are --ip, --key-id and --api-key, which name one client identity,
// and --ipv6-prefix and --api-key-secret, which make it as ratelab serve does.
type identityFlags struct {
	ip, keyID, apiKey string
	apiKeySecret      string
	ipv6Prefix        int
	flags             *pflag.FlagSet
}

func (id *identityFlags) register(f *pflag.FlagSet, what string) {
	id.flags = f
	f.StringVar(&id.ip, "ip", "", what+" this client IP address (e.g. 10.0.0.7; an IPv6 address stands for its network, see --ipv6-prefix)")
	f.StringVar(&id.keyID, "key-id", "", what+" this identity as key names carry it (e.g. key-3f2a… for an API key, 2001:db8::/64 for an IPv6 network)")
	f.StringVar(&id.apiKey, "api-key", "", what+" the client of this API key (hashed as ratelab serve hashes it: needs its secret)")
	f.IntVar(&id.ipv6Prefix, "ipv6-prefix", algorithms.DefaultIPv6Prefix, "with --ip, the --ipv6-prefix that ratelab serve ran with (48 to 128)")
	f.StringVar(&id.apiKeySecret, "api-key-secret", "", "with --api-key, the "+commands.APIKeySecretHelp)
}

// resolve returns the normalised identity the flags name, or "" for none.
func (id *identityFlags) resolve() (string, error) {
	given := 0
	for _, v := range []string{id.ip, id.keyID, id.apiKey} {
		if v != "" {
			given++
		}
	}
	if err := commands.CheckIPv6PrefixFlag(id.ipv6Prefix); err != nil {
		return "", err
	}
	switch {
	case given > 1:
		return "", commands.Usagef("give one of --ip, --key-id and --api-key")
	case id.ip != "":
		if strings.Contains(id.ip, "/") {
			n, err := algorithms.NormalizeIdentity(id.ip)
			if err != nil {
				return "", commands.UsageError(fmt.Errorf("--ip: %w", err))
			}
			return n, nil
		}
		addr, err := netip.ParseAddr(id.ip)
		if err != nil {
			return "", commands.Usagef("--ip %q is not an IP address; for another identity use --key-id", id.ip)
		}
		return algorithms.IPIdentity(addr, id.ipv6Prefix), nil
	case id.keyID != "":
		n, err := algorithms.NormalizeIdentity(id.keyID)
		if err != nil {
			return "", commands.UsageError(fmt.Errorf("--key-id: %w", err))
		}
		return n, nil
	case id.apiKey != "":
		secret := id.apiKeySecret
		if id.flags == nil || !id.flags.Changed("api-key-secret") {
			secret = os.Getenv(commands.EnvAPIKeySecret)
		}
		h, err := commands.NewAPIKeyHasher(secret, "--api-key")
		if err != nil {
			return "", err
		}
		return h.Identity(id.apiKey), nil
	}
	return "", nil
}
