package cmd

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/commands"
	"github.com/ratelab/ratelab/internal/redistest"
)

// TestIdentityFlagsFindTheKeys: inspect --ip finds an IPv6 client's /64 key, and
// inspect and flush --api-key find an API key's key with the server's secret, from
// the flag or the environment, and nothing with another secret.
func TestIdentityFlagsFindTheKeys(t *testing.T) {
	const secret = "a secret of this test, long enough"
	hasher, err := algorithms.NewAPIKeyHasher([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range redistest.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			const prefix = "cmdid"
			p := algorithms.Policy{Limit: 5, Window: time.Minute}
			lim, err := algorithms.NewRedis(b.Client, algorithms.MustKeyspace(prefix), algorithms.FixedWindow, p)
			if err != nil {
				t.Fatal(err)
			}
			network := algorithms.IPIdentity(netip.MustParseAddr("2001:db8::7"), algorithms.DefaultIPv6Prefix)
			for _, id := range []string{network, "2001:db8::7", hasher.Identity("sk_live_42")} {
				if _, err := lim.Allow(context.Background(), id); err != nil {
					t.Fatal(err)
				}
			}
			netKey, _ := lim.Key(network)
			addrKey, _ := lim.Key("2001:db8::7")
			apiKey, _ := lim.Key(hasher.Identity("sk_live_42"))
			if !strings.HasSuffix(netKey, ":{2001:db8::/64}") {
				t.Fatalf("the /64's key is %q", netKey)
			}
			base := []string{"--redis", b.URL(), "--prefix", prefix}
			tests := []struct {
				name    string
				env     string
				args    []string
				want    []string
				notWant []string
			}{
				{"an IPv6 address finds its /64", "", []string{"inspect", "--ip", "2001:db8::7"}, []string{netKey}, []string{addrKey}},
				{"the /64 named as a network", "", []string{"inspect", "--ip", "2001:db8::/64"}, []string{netKey}, []string{addrKey}},
				{"the /64 as a key id", "", []string{"inspect", "--key-id", "2001:db8::/64", "-o", "json"}, []string{netKey}, []string{addrKey}},
				{"/128 finds the address", "", []string{"inspect", "--ip", "2001:db8::7", "--ipv6-prefix", "128"}, []string{addrKey}, []string{netKey}},
				{"an API key with the secret in the environment", secret, []string{"inspect", "--api-key", "sk_live_42"}, []string{apiKey}, nil},
				{"an API key with the secret as a flag", "", []string{"inspect", "--api-key", "sk_live_42", "--api-key-secret", secret}, []string{apiKey}, nil},
				{"an API key with another secret", "", []string{"inspect", "--api-key", "sk_live_42", "--api-key-secret", "not the server's secret"}, nil, []string{apiKey}},
				{"flush an API key", secret, []string{"flush", "--api-key", "sk_live_42", "--dry-run"}, []string{apiKey}, []string{netKey}},
				{"flush an IPv6 client", "", []string{"flush", "--ip", "2001:db8::1", "--dry-run", "-o", "json"}, []string{netKey}, []string{addrKey, apiKey}},
			}
			for _, tt := range tests {
				t.Setenv(commands.EnvAPIKeySecret, tt.env)
				code, out, errOut := run(t, append(base, tt.args...)...)
				if code != commands.ExitOK {
					t.Errorf("%s: exit %d: %s", tt.name, code, errOut)
					continue
				}
				for _, w := range tt.want {
					if !strings.Contains(out, w) {
						t.Errorf("%s: the output lacks %s:\n%s", tt.name, w, out)
					}
				}
				for _, w := range tt.notWant {
					if strings.Contains(out, w) {
						t.Errorf("%s: the output shows %s:\n%s", tt.name, w, out)
					}
				}
				if strings.Contains(out+errOut, "sk_live_42") || strings.Contains(out+errOut, secret) {
					t.Errorf("%s: the API key or the secret was printed:\n%s%s", tt.name, out, errOut)
				}
			}
			if n, _ := b.Client.Exists(context.Background(), netKey, addrKey, apiKey).Result(); n != 3 {
				t.Errorf("a dry run deleted keys: %d of 3 left", n)
			}
		})
	}
}

// TestIdentityFlagErrors: a bad --ipv6-prefix, or an API key without a secret, is a
// usage error that says what to do and never shows the secret.
func TestIdentityFlagErrors(t *testing.T) {
	const weak = "tooshort"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"inspect", "--ip", "2001:db8::7", "--ipv6-prefix", "47"}, "choose 48 to 128"},
		{[]string{"inspect", "--ip", "2001:db8::7", "--ipv6-prefix", "129"}, "choose 48 to 128"},
		{[]string{"inspect", "--ipv6-prefix", "sixty-four"}, "invalid argument"},
		{[]string{"flush", "--ip", "2001:db8::7", "--ipv6-prefix", "0", "--yes"}, "choose 48 to 128"},
		{[]string{"inspect", "--ip", "2001:db8::/32"}, "IPv6 network of /48 to /128"},
		{[]string{"inspect", "--ip", "10.0.0.0/8"}, "IPv6 network"},
		{[]string{"inspect", "--api-key", "sk_live_42"}, commands.EnvAPIKeySecret},
		{[]string{"flush", "--api-key", "sk_live_42", "--yes"}, commands.EnvAPIKeySecret},
		{[]string{"inspect", "--api-key", "sk_live_42", "--api-key-secret", weak}, "at least 16"},
		{[]string{"serve", "--ipv6-prefix", "47"}, "--ipv6-prefix: invalid IPv6 prefix length: 47; choose 48 to 128"},
		{[]string{"serve", "--ipv6-prefix", "200"}, "choose 48 to 128"},
		{[]string{"serve", "--key-by", "api-key"}, "--key-by api-key needs the secret"},
		{[]string{"serve", "--key-by", "api-key", "--api-key-secret", weak}, "at least 16"},
		{[]string{"serve", "--key-by", "api-key", "--api-key-secret", ""}, commands.EnvAPIKeySecret},
	} {
		t.Setenv(commands.EnvAPIKeySecret, "")
		code, _, errOut := run(t, tc.args...)
		if code != commands.ExitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, %q; want exit 2 saying %q", tc.args, code, errOut, tc.want)
		}
		if strings.Contains(errOut, weak) {
			t.Errorf("%q: the secret reached the error: %s", tc.args, errOut)
		}
	}
	// A weak secret in the environment is refused the same way, and --help never shows it.
	t.Setenv(commands.EnvAPIKeySecret, weak)
	if code, _, errOut := run(t, "serve", "--key-by", "api-key"); code != commands.ExitUsage || !strings.Contains(errOut, "at least 16") || strings.Contains(errOut, weak) {
		t.Errorf("a weak secret in %s: exit %d, %q; want exit 2 saying at least 16, without the secret", commands.EnvAPIKeySecret, code, errOut)
	}
	for _, c := range []string{"serve", "inspect", "flush"} {
		if _, out, _ := run(t, c, "--help"); strings.Contains(out, weak) || !strings.Contains(out, "--api-key-secret") {
			t.Errorf("%s --help shows the secret from the environment, or lacks --api-key-secret:\n%s", c, out)
		}
	}
}
