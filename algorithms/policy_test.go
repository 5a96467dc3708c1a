package algorithms_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ratelab/ratelab/algorithms"
)

func TestPolicyValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		p       algorithms.Policy
		wantErr string // empty: valid
	}{
		{"plain", algorithms.Policy{Limit: 10, Window: time.Second}, ""},
		{"burst above limit", algorithms.Policy{Limit: 10, Window: time.Second, Burst: 20}, ""},
		{"largest", algorithms.Policy{Limit: algorithms.MaxLimit, Window: time.Hour}, ""},
		{"zero limit", algorithms.Policy{Limit: 0, Window: time.Second}, "limit is 0; it must be at least 1"},
		{"negative limit", algorithms.Policy{Limit: -5, Window: time.Second}, "limit is -5"},
		{"huge limit", algorithms.Policy{Limit: algorithms.MaxLimit + 1, Window: time.Second}, "at most 1000000"},
		{"zero window", algorithms.Policy{Limit: 1}, "window is 0s; it must be positive"},
		{"negative window", algorithms.Policy{Limit: 1, Window: -time.Second}, "must be positive"},
		{"tiny window", algorithms.Policy{Limit: 1, Window: time.Microsecond}, "at least 1ms"},
		{"long window", algorithms.Policy{Limit: 1, Window: 25 * time.Hour}, "at most 24h"},
		{"nanoseconds", algorithms.Policy{Limit: 1, Window: time.Second + 1}, "whole number of microseconds"},
		{"negative burst", algorithms.Policy{Limit: 1, Window: time.Second, Burst: -1}, "burst is -1"},
		{"huge burst", algorithms.Policy{Limit: 1, Window: time.Second, Burst: algorithms.MaxBurst + 1}, "burst is"},
		{"too fine", algorithms.Policy{Limit: algorithms.MaxLimit, Window: 24 * time.Hour}, "too fine-grained"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.p.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, algorithms.ErrInvalidPolicy) {
				t.Fatalf("Validate() = %v, want an ErrInvalidPolicy containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestPolicyStringRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p    algorithms.Policy
		want string
	}{
		{algorithms.Policy{Limit: 10, Window: time.Second}, "10r1s"},
		{algorithms.Policy{Limit: 10, Window: time.Second, Burst: 10}, "10r1s"},
		{algorithms.Policy{Limit: 10, Window: time.Second, Burst: 20}, "10r1s-b20"},
		{algorithms.Policy{Limit: 5, Window: 1500 * time.Millisecond}, "5r1500ms"},
		{algorithms.Policy{Limit: 100, Window: time.Hour, Burst: 1}, "100r1h-b1"},
		{algorithms.Policy{Limit: 3, Window: 90 * time.Second}, "3r90s"},
		{algorithms.Policy{Limit: 3, Window: 2 * time.Minute}, "3r2m"},
		{algorithms.Policy{Limit: 3, Window: 1234 * time.Microsecond}, "3r1234us"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.p, got, tt.want)
		}
		back, err := algorithms.ParsePolicy(tt.want)
		if err != nil {
			t.Fatalf("ParsePolicy(%q): %v", tt.want, err)
		}
		if back.String() != tt.want || back.EffectiveBurst() != tt.p.EffectiveBurst() {
			t.Errorf("ParsePolicy(%q) = %+v", tt.want, back)
		}
	}
	for _, bad := range []string{"", "10", "r1s", "10r", "10rxs", "0r1s", "10r1s-b", "10r1s-bx", "10r0s", "-1r1s"} {
		if _, err := algorithms.ParsePolicy(bad); err == nil {
			t.Errorf("ParsePolicy(%q) accepted", bad)
		}
	}
}

func TestNormalizeIdentity(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want, wantErr string }{
		{in: "10.0.0.7", want: "10.0.0.7"},
		{in: "::ffff:10.0.0.7", want: "10.0.0.7"},
		{in: "2001:0DB8:0000::0001", want: "2001:db8::1"},
		{in: "fe80::1%eth0", want: "fe80::1"},
		{in: "user_42@tenant-a", want: "user_42@tenant-a"},
		{in: "", wantErr: "empty"},
		{in: "a}b{c", wantErr: "character '}'"},
		{in: "ratelab:*", wantErr: "character '*'"},
		{in: "a b", wantErr: "character ' '"},
		{in: "évian", wantErr: "character"},
		{in: strings.Repeat("a", algorithms.MaxIdentityLen+1), wantErr: "at most 128"},
	}
	for _, tt := range tests {
		got, err := algorithms.NormalizeIdentity(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, algorithms.ErrInvalidIdentity) {
				t.Errorf("NormalizeIdentity(%q) = %q, %v; want an error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizeIdentity(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestKeyspace(t *testing.T) {
	t.Parallel()
	ks := algorithms.MustKeyspace("ratelab")
	p := algorithms.Policy{Limit: 10, Window: time.Second, Burst: 20}
	key := ks.Limiter(algorithms.TokenBucket, p, "10.0.0.7")
	if key != "ratelab:rl:token-bucket:10r1s-b20:{10.0.0.7}" {
		t.Fatalf("Limiter key = %q", key)
	}
	got, err := ks.Parse(key)
	if err != nil || got.Kind != algorithms.KindLimiter || got.Algorithm != algorithms.TokenBucket ||
		got.Identity != "10.0.0.7" || *got.Policy != p {
		t.Fatalf("Parse(%q) = %+v, %v", key, got, err)
	}
	lim, err := algorithms.NewRedis(nil, ks, algorithms.TokenBucket, p)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := lim.Key("::ffff:10.0.0.7"); err != nil || got != key {
		t.Fatalf("Redis.Key = %q, %v; want %q, the keyspace's name for the normalised identity", got, err, key)
	}
	v6 := ks.Limiter(algorithms.GCRA, p, "2001:db8::1")
	if got, err := ks.Parse(v6); err != nil || got.Identity != "2001:db8::1" {
		t.Fatalf("Parse(%q) = %+v, %v", v6, got, err)
	}
	if got, err := ks.Parse(ks.Product("p-1")); err != nil || got.Kind != algorithms.KindProduct || got.ProductID != "p-1" {
		t.Fatalf("Parse(product) = %+v, %v", got, err)
	}
	if got, err := ks.Parse(ks.ProductLock("p-1")); err != nil || got.Kind != algorithms.KindLock || got.ProductID != "p-1" {
		t.Fatalf("Parse(lock) = %+v, %v", got, err)
	}
	for _, foreign := range []string{"ratelabx:rl:gcra:10r1s:{1.2.3.4}", "other:thing", "ratelab"} {
		if _, err := ks.Parse(foreign); !errors.Is(err, algorithms.ErrForeignKey) {
			t.Errorf("Parse(%q) = %v, want ErrForeignKey", foreign, err)
		}
	}
	for _, odd := range []string{"ratelab:rl:gcra:10r1s:1.2.3.4", "ratelab:rl:nope:10r1s:{1.2.3.4}",
		"ratelab:rl:gcra:xx:{1.2.3.4}", "ratelab:cache:{x}", "ratelab:rl:gcra:10r1s:{a b}", "ratelab:rl:gcra:10r1s:extra:{1.2.3.4}", "ratelab:rl:gcra:10r1000ms:{1.2.3.4}"} {
		if _, err := ks.Parse(odd); !errors.Is(err, algorithms.ErrUndecodable) {
			t.Errorf("Parse(%q) = %v, want ErrUndecodable", odd, err)
		}
	}
}

func TestNewKeyspaceRefusesDangerousPrefixes(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "*", "?*", "[*]", "a:b", "a{b", "a b", "a\tb", strings.Repeat("p", 65)} {
		if _, err := algorithms.NewKeyspace(bad); !errors.Is(err, algorithms.ErrInvalidPrefix) {
			t.Errorf("NewKeyspace(%q) = %v, want ErrInvalidPrefix", bad, err)
		}
	}
	ks := algorithms.MustKeyspace("rate*lab")
	if got := ks.Match(); got != `rate\*lab:*` {
		t.Fatalf("Match() = %q, glob characters must be escaped", got)
	}
	if got := algorithms.MustKeyspace("ratelab").MatchIdentity("10.0.0.7"); got != "ratelab:rl:*{10.0.0.7}" {
		t.Fatalf("MatchIdentity = %q", got)
	}
}

// hashTag is the part of key that Redis Cluster hashes: between the first '{' and
// the next '}', when that is not empty.
func hashTag(key string) string {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return key
	}
	end := strings.IndexByte(key[open+1:], '}')
	if end <= 0 {
		return key
	}
	return key[open+1 : open+1+end]
}

// FuzzNormalizeIdentity: whatever the input, an accepted identity stays inside its
// hash tag, carries no glob or separator that could reach other keys, is bounded,
// is stable under normalisation, and parses back out of its key.
func FuzzNormalizeIdentity(f *testing.F) {
	for _, s := range []string{"10.0.0.7", "::ffff:1.2.3.4", "2001:db8::1", "fe80::1%eth0", "2001:db8::/64", "10.0.0.0/8", "../../etc", "a}b", "{x}", "*", "user@x", "a\x00", "1.2.3.4}{"} {
		f.Add(s)
	}
	ks := algorithms.MustKeyspace("ratelab")
	p := algorithms.Policy{Limit: 1, Window: time.Second}
	f.Fuzz(func(t *testing.T, in string) {
		id, err := algorithms.NormalizeIdentity(in)
		if err != nil {
			return
		}
		if len(id) == 0 || len(id) > algorithms.MaxIdentityLen {
			t.Fatalf("identity %q of length %d", id, len(id))
		}
		if strings.ContainsAny(id, "{}*?[]\\ \t\r\n") {
			t.Fatalf("identity %q holds a character that breaks keys or globs", id)
		}
		if again, err := algorithms.NormalizeIdentity(id); err != nil || again != id {
			t.Fatalf("normalising %q again gives %q, %v", id, again, err)
		}
		key := ks.Limiter(algorithms.GCRA, p, id)
		if tag := hashTag(key); tag != id {
			t.Fatalf("key %q hashes on %q, not on the identity %q", key, tag, id)
		}
		parsed, err := ks.Parse(key)
		if err != nil || parsed.Identity != id {
			t.Fatalf("Parse(%q) = %+v, %v", key, parsed, err)
		}
	})
}

// FuzzParsePolicy: any accepted policy text is valid and survives a round trip.
func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{"10r1s", "10r1s-b20", "1r1ms", "5r1500ms", "0r1s", "1r-1s", "9999999r1h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := algorithms.ParsePolicy(s)
		if err != nil {
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("ParsePolicy(%q) accepted an invalid policy: %v", s, err)
		}
		back, err := algorithms.ParsePolicy(p.String())
		if err != nil || back != p {
			t.Fatalf("round trip of %q: %+v -> %q -> %+v, %v", s, p, p.String(), back, err)
		}
	})
}

func TestJSONUsesMicroseconds(t *testing.T) {
	t.Parallel()
	p := algorithms.Policy{Limit: 10, Window: 1500 * time.Millisecond, Burst: 20}
	b, err := json.Marshal(p)
	if err != nil || string(b) != `{"limit":10,"window":"1500ms","window_us":1500000,"burst":20}` {
		t.Fatalf("Policy JSON = %s, %v", b, err)
	}
	var back algorithms.Policy
	if err := json.Unmarshal(b, &back); err != nil || back != p {
		t.Fatalf("Policy round trip = %+v, %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"limit":0,"window_us":1000}`), &back); !errors.Is(err, algorithms.ErrInvalidPolicy) {
		t.Fatalf("an invalid policy in JSON gave %v", err)
	}
	d := algorithms.Decision{Allowed: false, Limit: 10, RetryAfter: 1234 * time.Microsecond, ResetAfter: time.Second, TimeMicros: 42}
	b, _ = json.Marshal(d)
	if string(b) != `{"allowed":false,"limit":10,"remaining":0,"retry_after_us":1234,"reset_after_us":1000000,"delay_us":0,"time_us":42}` {
		t.Fatalf("Decision JSON = %s", b)
	}
}
